"""Small PNG images drawn without Pillow (which only the emulator extra installs).

The doctor uploads images of its own; it draws them like the emulator's samples (a
subject on a plain background, see ``recraft_async.testing.sample_images``), but encodes
them with the standard library alone, so that the core install can run it.
"""

from __future__ import annotations

import struct
import zlib

# Both operations take these: remove background needs sides of 256-4096 px, crisp
# upscale 32-4096 px (recraft_async._core._limits); 256 is the smallest side both accept.
SIDE = 256


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def circle_png(
    side: int = SIDE,
    background: tuple[int, int, int] = (255, 255, 255),
    colour: tuple[int, int, int] = (200, 30, 40),
) -> bytes:
    """An RGB PNG of ``side`` x ``side`` pixels: a disc of ``colour`` on ``background``."""
    centre, radius = (side - 1) / 2, side * 0.3
    rows = bytearray()
    for y in range(side):
        rows.append(0)  # filter type 0: the row as it is
        for x in range(side):
            inside = (x - centre) ** 2 + (y - centre) ** 2 <= radius**2
            rows.extend(colour if inside else background)
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8 bits, RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )
