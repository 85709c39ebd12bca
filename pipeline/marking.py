"""The watermark stage's file work (in a pool worker): write a registered image's marked copy, and read a file's mark."""
from __future__ import annotations

import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from . import watermark
from .digest import IngestError, hash_file

MIN_SIDE = 128  # a shorter side cannot carry the payload's frequencies (measured: 64 px loses 8-47 of 128 bits)
JPEG_QUALITY = 95


@dataclass(frozen=True)
class MarkedCopy:
    """A marked copy as written: where, its own digests, and its PSNR against the original."""

    path: str
    sha256: str
    size: int
    psnr: float


def copy_name(record_id: str, filename: str, mime: str) -> str:
    """Where a record's marked copy goes (relative): RECORD_ID/NAME.marked.jpg for a JPEG, else .png (lossless)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).stem).strip("._")[:64] or "image"
    return f"{record_id}/{stem}.marked{'.jpg' if mime == 'image/jpeg' else '.png'}"


def mark_file(source: str, dest: str, payload: bytes, key: bytes) -> MarkedCopy:
    """Write the marked copy of the image at source to dest (atomically) under the watermark key; raise
    IngestError naming source."""
    try:
        with _opened(source) as image:
            upright = ImageOps.exif_transpose(image)
            if min(upright.size) < MIN_SIDE:
                raise IngestError(source, f"too small to watermark ({upright.width}x{upright.height};"
                                          f" {MIN_SIDE} px a side at least)")
            _save(watermark.embed(upright, payload, key), Path(dest))
            with _opened(dest) as written:
                quality = watermark.psnr(upright, written)
        read_back = read_file(dest, key)  # as verification will read it
        wrong = watermark.PAYLOAD_BITS if read_back is None else watermark.bit_errors(read_back, payload)
        if wrong:
            Path(dest).unlink()
            raise IngestError(source, f"not watermarked: the payload did not read back from the marked copy"
                                      f" ({wrong} of {watermark.PAYLOAD_BITS} bits wrong)")
        digest = hash_file(dest)
        return MarkedCopy(path=dest, sha256=digest.sha256, size=digest.size, psnr=round(quality, 2))
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(source, f"not watermarked: {type(exc).__name__}: {exc}") from exc


def read_file(path: str, key: bytes) -> bytes | None:
    """The payload read from an image file under the watermark key (JPEGs decoded at reduced size), or None if it
    is not a readable image."""
    try:
        with _opened(path, reduced=True) as image:
            return watermark.read(ImageOps.exif_transpose(image), key)
    except Exception:  # not an image, or one the fingerprint step refused already with its reason
        return None


def _opened(path: str, reduced: bool = False) -> Image.Image:
    """The image at path, decoded with decompression-bomb warnings raised as errors (reduced: a JPEG's grey
    channel at the smallest DCT scale still covering the watermark grid)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(path)
        if reduced and image.format == "JPEG":
            image.draft("L", (watermark.GRID, watermark.GRID))
        image.load()
    return image


def _save(image: Image.Image, dest: Path) -> None:
    """Save as JPEG (quality 95) or PNG by the name, through a temporary file renamed into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".marking-", suffix=dest.suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            if dest.suffix == ".jpg":
                image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode).save(
                    out, "JPEG", quality=JPEG_QUALITY, subsampling=0)
            else:
                image.save(out, "PNG")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
