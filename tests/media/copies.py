"""Everyday changes a copy of a picture goes through, for the watermark tests."""
from __future__ import annotations

import io

from PIL import Image, ImageEnhance


def encoded(image: Image.Image, fmt: str, **options) -> Image.Image:
    """The image after a save and load in this format."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return Image.open(io.BytesIO(buffer.getvalue()))


def scaled(image: Image.Image, factor: float) -> Image.Image:
    """The image with both sides scaled (Lanczos)."""
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.LANCZOS)


SURVIVED = {
    "jpeg90": lambda im: encoded(im, "JPEG", quality=90),
    "jpeg75": lambda im: encoded(im, "JPEG", quality=75),
    "jpeg50": lambda im: encoded(im, "JPEG", quality=50),
    "resize50": lambda im: scaled(im, 0.5),
    "resize25": lambda im: scaled(im, 0.25),
    "brightness+20": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "png": lambda im: encoded(im, "PNG"),
}
# Geometric changes move every cell of the grid: the payload is lost (the perceptual hash carries these).
DEFEATED = {
    "crop10": lambda im: im.crop((im.width // 20, im.height // 20, im.width - im.width // 20,
                                  im.height - im.height // 20)),
    "rotate2": lambda im: im.rotate(2, resample=Image.Resampling.BICUBIC),
}
