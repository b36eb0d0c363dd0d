"""The service's published input limits, written once for the client's checks and the emulator.

KIE and Recraft publish "MB" and "16 MP" without saying whether they are decimal or
binary. Both are read the stricter, decimal way (10**6), so that an image we accept is
never refused after a paid upload; the emulator enforces exactly these values.
"""

from __future__ import annotations

from typing import Literal, get_args

import attrs

from ._models import Operation

MB = 1_000_000
MEGAPIXEL = 1_000_000
MAX_PIXELS = 16 * MEGAPIXEL
# The formats both operations accept, as a decoder (ours or Pillow's) names them.
ImageFormat = Literal["PNG", "JPEG", "WEBP"]
ACCEPTED_FORMATS: frozenset[str] = frozenset(get_args(ImageFormat))


@attrs.frozen
class FormatNames:
    """How one accepted format is named: its MIME type and its file name suffixes."""

    mime: str
    suffixes: tuple[str, ...]  # the first is the one a file of ours is given

    @property
    def extension(self) -> str:
        """The extension a file of this format is saved with, without its dot."""
        return self.suffixes[0].lstrip(".")


# The one table of image formats: uploads, inputs, downloads and the emulator read it.
IMAGE_FORMATS: dict[ImageFormat, FormatNames] = {
    "PNG": FormatNames("image/png", (".png",)),
    "JPEG": FormatNames("image/jpeg", (".jpg", ".jpeg")),
    "WEBP": FormatNames("image/webp", (".webp",)),
}
IMAGE_SUFFIXES = frozenset(suffix for names in IMAGE_FORMATS.values() for suffix in names.suffixes)


@attrs.frozen
class Limits:
    """The published input limits of one operation (``kie-api.md`` section 4)."""

    max_bytes: int
    max_pixels: int
    min_side: int
    max_side: int


UPSCALE = Limits(max_bytes=10 * MB, max_pixels=MAX_PIXELS, min_side=32, max_side=4096)
REMOVE_BACKGROUND = Limits(max_bytes=5 * MB, max_pixels=MAX_PIXELS, min_side=256, max_side=4096)
LIMITS: dict[Operation, Limits] = {
    Operation.UPSCALE: UPSCALE,
    Operation.REMOVE_BACKGROUND: REMOVE_BACKGROUND,
}

# Credits per task, whatever the scale: the prices third-party integrations quote (KIE's
# docs pages publish none). The emulator charges them; the doctor checks a real account.
PUBLISHED_PRICES: dict[Operation, float] = {
    Operation.UPSCALE: 0.5,
    Operation.REMOVE_BACKGROUND: 1.0,
}
