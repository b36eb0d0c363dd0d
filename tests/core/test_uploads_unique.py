"""Uploads never collide: KIE's upload API replaces a file of the same path and name."""

from __future__ import annotations

import io

import pytest
from conftest import emulator_client, image_bytes
from PIL import Image

import recraft_async as ra
from recraft_async.testing import KieEmulator

pytestmark = pytest.mark.anyio

RED, BLUE = (220, 20, 20), (20, 20, 220)


def colour_of(data):
    """The colour at the centre of an image."""
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").getpixel((image.width // 2, image.height // 2))


async def _results(inputs):
    emulator = KieEmulator(time_scale=0.001)
    poll = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.1, timeout=30.0)
    async with (
        emulator,
        emulator_client(emulator, poll=poll) as client,
        emulator.http_client() as http,
    ):
        # Both submitted before either is processed: the worst case for a shared name.
        jobs = [client.upscale(image) for image in inputs]
        results = [await job for job in jobs]
        return [(await http.get(result.url)).content for result in results], emulator


async def test_two_files_of_one_name_each_get_their_own_result(tmp_path):
    """2023/IMG_0001.png and 2024/IMG_0001.png are processed on their own images."""
    first, second = tmp_path / "2023" / "IMG_0001.png", tmp_path / "2024" / "IMG_0001.png"
    for path, colour in ((first, RED), (second, BLUE)):
        path.parent.mkdir()
        path.write_bytes(image_bytes(colour=colour))
    outputs, emulator = await _results([first, second])
    assert [colour_of(out) for out in outputs] == [RED, BLUE]
    assert emulator.stats.uploads == 2


async def test_two_byte_inputs_each_get_their_own_result():
    """Raw bytes inputs (all called "image") never overwrite each other's upload."""
    outputs, _ = await _results([image_bytes(colour=RED), image_bytes(colour=BLUE)])
    assert [colour_of(out) for out in outputs] == [RED, BLUE]
