"""Still images for the tests that feed pictures (JPEG/WebP) to rtmpgop."""

from __future__ import annotations

import io

from PIL import Image

from fixtures.media import solid_frame


def solid_image(fmt: str, rgb: tuple[int, int, int], w: int = 64, h: int = 48,
                quality: int = 90) -> bytes:
    """A ``w`` x ``h`` picture of one colour (``fixtures.media.solid_frame``) encoded by Pillow
    as ``fmt`` ("JPEG", "WEBP") at ``quality``."""
    buf = io.BytesIO()
    Image.fromarray(solid_frame(rgb, w, h)).save(buf, fmt, quality=quality)
    return buf.getvalue()
