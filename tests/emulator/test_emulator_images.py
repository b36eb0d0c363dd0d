"""The emulator's image work, read back with Pillow."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("PIL")
from conftest import image_bytes
from PIL import Image

from recraft_async import Operation
from recraft_async._core._limits import LIMITS, Limits
from recraft_async.testing import sample_images
from recraft_async.testing._images import check_input, remove_background, sniff_mime, upscale
from recraft_async.testing._service import KieService

UPSCALE_LIMITS = LIMITS[Operation.UPSCALE]
REMOVE_BG_LIMITS = LIMITS[Operation.REMOVE_BACKGROUND]


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_sample_images_are_drawn_pngs_with_a_subject_in_the_middle():
    """Samples are PNGs of the asked size, plain at the corners, coloured in the centre."""
    samples = sample_images(64)
    assert [name for name, _ in samples] == [
        "red-circle.png",
        "blue-square.png",
        "green-triangle.png",
    ]
    for _, data in samples:
        image = _open(data)
        assert image.format == "PNG"
        assert image.size == (64, 64)
        assert image.getpixel((0, 0)) != image.getpixel((32, 32))


@pytest.mark.parametrize(("scale", "fmt", "pil_format"), [(2, "PNG", "PNG"), (4, "JPG", "JPEG")])
def test_upscale_multiplies_both_sides_in_the_requested_format(scale, fmt, pil_format):
    """Upscale gives exactly scale x width and height, encoded as asked."""
    out = _open(upscale(image_bytes((30, 17)), scale, fmt))
    assert out.size == (30 * scale, 17 * scale)
    assert out.format == pil_format


def test_upscale_keeps_alpha_in_png_and_flattens_it_on_white_for_jpg():
    """An RGBA input stays RGBA as PNG; as JPEG its transparent pixels become white."""
    source = image_bytes((8, 8), (0, 0, 0, 0), mode="RGBA")
    assert _open(upscale(source, 2, "PNG")).mode == "RGBA"
    flat = _open(upscale(source, 2, "JPG")).convert("RGB")
    assert all(channel > 240 for channel in flat.getpixel((4, 4)))  # type: ignore[union-attr]


def test_upscale_resamples_smoothly():
    """LANCZOS makes new in-between values at a hard edge (nearest-neighbour would not)."""
    image = Image.new("L", (8, 8), 0)
    image.paste(255, (4, 0, 8, 8))
    out = io.BytesIO()
    image.save(out, "PNG")
    big = _open(upscale(out.getvalue(), 4, "PNG")).convert("L")
    row = {big.getpixel((x, 16)) for x in range(32)}
    assert any(0 < value < 255 for value in row)  # type: ignore[operator]


@pytest.mark.parametrize(("name", "data"), sample_images(256))
def test_remove_background_clears_the_border_colour_and_keeps_the_subject(name, data):
    """Corners become transparent, the centre stays opaque, the edge is soft."""
    out = _open(remove_background(data))
    assert out.format == "PNG"
    assert out.mode == "RGBA"
    assert out.size == (256, 256)
    alpha = out.getchannel("A")
    for corner in [(0, 0), (255, 0), (0, 255), (255, 255)]:
        assert alpha.getpixel(corner) == 0, name
    assert alpha.getpixel((128, 140)) == 255, name
    assert any(alpha.histogram()[1:255]), "no soft edge"


def test_check_input_accepts_good_images_and_explains_bad_ones():
    """Format, bytes, pixels and sides are checked per operation, with a reason."""
    assert check_input(image_bytes((300, 300)), REMOVE_BG_LIMITS) is None
    assert check_input(image_bytes((32, 32)), UPSCALE_LIMITS) is None
    assert "sides" in (check_input(image_bytes((31, 64)), UPSCALE_LIMITS) or "")
    assert "sides" in (check_input(image_bytes((100, 300)), REMOVE_BG_LIMITS) or "")
    assert "sides" in (check_input(image_bytes((4097, 32)), UPSCALE_LIMITS) or "")
    assert "decode" in (check_input(b"not an image", UPSCALE_LIMITS) or "")
    assert "decode" in (check_input(image_bytes((300, 300))[:200], UPSCALE_LIMITS) or "")
    gif = io.BytesIO()
    Image.new("RGB", (300, 300)).save(gif, "GIF")
    assert "format" in (check_input(gif.getvalue(), UPSCALE_LIMITS) or "")
    assert "bytes" in (check_input(b"x" * (5_000_000 + 1), REMOVE_BG_LIMITS) or "")


def test_check_input_counts_pixels():
    """More pixels than the limit is refused even when each side is within bounds."""
    tiny = Limits(max_bytes=10**9, max_pixels=99, min_side=1, max_side=4096)
    assert "pixels" in (check_input(image_bytes((10, 10)), tiny) or "")


def test_the_emulator_enforces_the_clients_one_definition_of_the_limits():
    """16 MP is 16,000,000 pixels and crisp upscale sides are 32-4096, as in _limits."""
    assert UPSCALE_LIMITS.max_pixels == REMOVE_BG_LIMITS.max_pixels == 16_000_000
    assert (UPSCALE_LIMITS.min_side, UPSCALE_LIMITS.max_side) == (32, 4096)
    assert (REMOVE_BG_LIMITS.min_side, REMOVE_BG_LIMITS.max_side) == (256, 4096)
    at_limit = Limits(max_bytes=10**9, max_pixels=16_000_000, min_side=1, max_side=5000)
    assert check_input(image_bytes((4000, 4000), 0, mode="L"), at_limit) is None
    assert "pixels" in (check_input(image_bytes((4001, 4000), 0, mode="L"), at_limit) or "")


@pytest.mark.anyio
@pytest.mark.parametrize("operation", list(Operation))
async def test_the_service_checks_inputs_against_the_limits_module_byte_for_byte(operation):
    """A task's input may weigh exactly _limits' max_bytes (decimal MB); one byte more fails."""
    service = KieService(time_scale=0.0)
    limit = LIMITS[operation].max_bytes
    outcomes = []
    for size in (limit, limit + 1):
        key = service.store(f"images/{size}.png", b"\x89PNG\r\n\x1a\n".ljust(size, b"\0"))
        task = service.create_task(
            operation,
            dialect="market",
            image_url=f"https://kie-emulator.invalid/_emulator/files/{key}",
            scale=2 if operation is Operation.UPSCALE else 1,
            format="PNG",
            callback_url=None,
            base_url="https://kie-emulator.invalid",
            params={},
        )
        await service.settle(task)
        outcomes.append(task.error_message or "")
    assert "decode" in outcomes[0]
    assert outcomes[1] == f"image is {limit + 1} bytes, the limit is {limit}"


def test_sniff_mime_knows_the_three_input_formats():
    """PNG, JPEG and WEBP are told apart by their magic numbers."""
    jpeg, webp = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, "JPEG")
    Image.new("RGB", (4, 4)).save(webp, "WEBP")
    assert sniff_mime(image_bytes((2, 2))) == "image/png"
    assert sniff_mime(jpeg.getvalue()) == "image/jpeg"
    assert sniff_mime(webp.getvalue()) == "image/webp"
    assert sniff_mime(b"??") == "application/octet-stream"
