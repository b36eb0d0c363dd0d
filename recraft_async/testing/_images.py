"""Real image work with Pillow: input checks, crisp upscale, background removal, samples.

Pillow is imported inside the functions so that ``recraft_async.testing`` (and the pytest
plugin) import without it; only the image work needs the ``emulator`` extra.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from recraft_async._core._images import MIME_TYPES, sniff_format
from recraft_async._core._limits import ACCEPTED_FORMATS, Limits

if TYPE_CHECKING:
    from PIL import Image

# Background distance (0-255, the largest channel difference) below which a pixel is
# fully transparent and above which it is fully opaque; between them the edge is soft.
_CLEAR_BELOW = 12
_OPAQUE_ABOVE = 60
_EDGE_BLUR = 1.0


def check_input(data: bytes, limits: Limits) -> str | None:
    """Why ``data`` is not acceptable input, or None when it is (decodes it fully).

    ``limits`` comes from ``recraft_async._core._limits``, the one definition the client's own
    checks use too, so that client and emulator never disagree about an image.
    """
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 - optional dependency

    if len(data) > limits.max_bytes:
        return f"image is {len(data)} bytes, the limit is {limits.max_bytes}"
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ACCEPTED_FORMATS:
                return f"unsupported image format {image.format}: use PNG, JPG or WEBP"
            width, height = image.size
            if width * height > limits.max_pixels:
                return f"image has {width * height} pixels, the limit is {limits.max_pixels}"
            if min(width, height) < limits.min_side or max(width, height) > limits.max_side:
                return (
                    f"image is {width}x{height}; sides must be "
                    f"{limits.min_side}-{limits.max_side} px"
                )
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"cannot decode image: {exc}"
    return None


def upscale(data: bytes, scale: int, format: str) -> bytes:
    """``data`` resized to exactly ``scale`` times its sides with LANCZOS, as PNG or JPEG."""
    from PIL import Image  # noqa: PLC0415 - optional dependency

    with Image.open(io.BytesIO(data)) as opened:
        image = _normalise_mode(opened, keep_alpha=format == "PNG")
    big = image.resize((image.width * scale, image.height * scale), Image.Resampling.LANCZOS)
    return _encode(big, format)


def remove_background(data: bytes) -> bytes:
    """An RGBA PNG: the border's colour made transparent, the subject opaque, a soft edge."""
    from PIL import Image, ImageChops, ImageFilter, ImageStat  # noqa: PLC0415

    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    border = Image.new("RGB", (2 * (width + height), 1))
    strips = [
        image.crop((0, 0, width, 1)),
        image.crop((0, height - 1, width, height)),
        image.crop((0, 0, 1, height)).rotate(90, expand=True),
        image.crop((width - 1, 0, width, height)).rotate(90, expand=True),
    ]
    offset = 0
    for strip in strips:
        border.paste(strip, (offset, 0))
        offset += strip.width
    # The median resists a subject that touches the border in a few places.
    background = tuple(int(v) for v in ImageStat.Stat(border).median)
    diff = ImageChops.difference(image, Image.new("RGB", image.size, background))
    red, green, blue = diff.split()
    distance = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    span = _OPAQUE_ABOVE - _CLEAR_BELOW
    ramp = [min(255, max(0, (v - _CLEAR_BELOW) * 255 // span)) for v in range(256)]
    # Shrink the mask by a pixel before softening it, so the blur does not spread
    # background-coloured pixels outwards as a pale halo.
    mask = distance.point(ramp).filter(ImageFilter.MinFilter(3))
    alpha = mask.filter(ImageFilter.GaussianBlur(_EDGE_BLUR))
    result = image.convert("RGBA")
    result.putalpha(alpha)
    return _encode(result, "PNG")


def sample_images(size: int = 256) -> list[tuple[str, bytes]]:
    """A few subjects drawn on plain backgrounds, as ``(name, png bytes)``; nothing downloaded."""
    from PIL import Image, ImageDraw  # noqa: PLC0415 - optional dependency

    # Drawn 4x larger and reduced, which gives the antialiased edges of a real photo.
    big = size * 4

    def draw(background: tuple[int, int, int], shape: str, colour: tuple[int, int, int]) -> bytes:
        canvas = Image.new("RGB", (big, big), background)
        pen = ImageDraw.Draw(canvas)
        lo, hi = int(big * 0.2), int(big * 0.8)
        if shape == "circle":
            pen.ellipse((lo, lo, hi, hi), fill=colour)
        elif shape == "square":
            pen.rectangle((lo, lo, hi, hi), fill=colour)
        else:
            pen.polygon([(big // 2, int(big * 0.12)), (hi, hi), (lo, hi)], fill=colour)
        return _encode(canvas.resize((size, size), Image.Resampling.LANCZOS), "PNG")

    return [
        ("red-circle.png", draw((255, 255, 255), "circle", (200, 30, 40))),
        ("blue-square.png", draw((228, 228, 228), "square", (30, 60, 190))),
        ("green-triangle.png", draw((245, 236, 212), "triangle", (20, 140, 60))),
    ]


def sniff_mime(data: bytes) -> str:
    """The MIME type of stored bytes, from their magic number."""
    return MIME_TYPES.get(sniff_format(data) or "", "application/octet-stream")


def _normalise_mode(image: Image.Image, *, keep_alpha: bool) -> Image.Image:
    has_alpha = image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info
    if has_alpha and keep_alpha:
        return image.convert("RGBA")
    if has_alpha:
        # JPEG has no alpha: flatten on white rather than on an arbitrary black.
        from PIL import Image as PILImage  # noqa: PLC0415

        rgba = image.convert("RGBA")
        flat = PILImage.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("L" if image.mode in {"1", "L"} and keep_alpha else "RGB")


def _encode(image: Image.Image, format: str) -> bytes:
    out = io.BytesIO()
    if format in {"JPG", "JPEG"}:
        image.save(out, "JPEG", quality=92)
    else:
        image.save(out, "PNG")
    return out.getvalue()
