"""Perceptual fingerprints (64-bit pHash), media type and origin type of one file.

fingerprint() is the only decode path, used both to register and to verify, so
its hashes always compare like with like. It always uses Pillow's JPEG draft
mode: a JPEG is decoded straight to greyscale at 1/2..1/8 scale (libjpeg's DCT
scaling, never below 64 px a side), then EXIF orientation is applied and
imagehash.phash runs as usual; other formats are decoded in full. Measured by
bench/bench_fingerprint.py: on 50 1024x768 JPEGs draft takes 2.2-2.6 ms per image
against 7.5-9.2 ms for a full decode (3.5x), and on sample_media/ 1.9 ms against
3.7 ms (its PNGs are decoded in full either way).
The two decode paths give hashes 0 bits apart on most files and 2 on a few
(max 2 of 64), and copies match their originals either way, so the speed is
free; but a hash from one path must never be compared with one from the other.

PHASH_THRESHOLD = 8: a Hamming distance <= 8 of 64 bits is a perceptual match.
Measured by the same bench: resized (50 %, 25 %) and recompressed (quality 60,
30) copies are 0-2 bits from their original, +15 % brightness 0-6, a 5 % crop
per side 2-18 (median 8: the edge of what counts as "the same picture"), while
1,225 pairs of unrelated images are 18-44 apart (median 32) and the sample set's
unrelated pairs 24-38; the threshold leaves a margin of 10 bits below the
closest unrelated pair.

Decompression bombs: Image.MAX_IMAGE_PIXELS stays on. An image above it is not
decoded; it gets a Fingerprint with a null perceptual_hash and the reason, so it
can still be registered by its SHA-256. A truncated or corrupt image (a PNG
chunk with a bad checksum included) raises IngestError naming the file and the
decoder's complaint.
"""

from __future__ import annotations

import mimetypes
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import imagehash
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.JpegImagePlugin import JpegImageFile

from pipeline.digest import IngestError

PHASH_THRESHOLD = 8
PHASH_HEX_LENGTH = 16
DRAFT_SIZE = (64, 64)
EXIF_MAKE = 0x010F
EXIF_MODEL = 0x0110
EXIF_ORIENTATION = 0x0112
QUARTER_TURNS = frozenset({5, 6, 7, 8})
OCTET_STREAM = "application/octet-stream"
SNIFF_BYTES = 512
HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
DOCUMENT_TYPES = frozenset(
    {
        "application/pdf",
        "application/msword",
        "application/rtf",
        "application/epub+zip",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
    }
)
DOCUMENT_PREFIXES = ("text/", "application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.opendocument.")
MAGIC = (
    (0, b"%PDF-", "application/pdf"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"OggS", "audio/ogg"),
    (8, b"WAVE", "audio/wav"),
    (8, b"AVI ", "video/x-msvideo"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (4, b"ftypM4A", "audio/mp4"),
    (4, b"ftypqt", "video/quicktime"),
    (4, b"ftyp", "video/mp4"),
)


@dataclass(frozen=True)
class Fingerprint:
    """What the file looks like: pHash (16 hex chars, or None with a reason), media and origin type, upright pixel size."""

    perceptual_hash: str | None
    reason: str | None
    origin_type: str
    mime: str
    width: int | None
    height: int | None


def derive_origin_type(mime: str, has_camera_exif: bool = False) -> str:
    """Map a media type (plus whether EXIF names a camera) to camera_image, digital_image, video, audio, document or other."""
    mime = mime.split(";")[0].strip().lower()
    if mime.startswith("image/"):
        return "camera_image" if has_camera_exif else "digital_image"
    if mime.startswith("video/"):
        return "video"
    if mime.startswith("audio/"):
        return "audio"
    if mime in DOCUMENT_TYPES or mime.startswith(DOCUMENT_PREFIXES):
        return "document"
    return "other"


def looks_like_html(head: bytes) -> bool:
    """Whether the first bytes of a file are an HTML document (an error page, say)."""
    return head.lstrip().lower().startswith(HTML_STARTS)


def phash_distance(a_hex: str, b_hex: str) -> int:
    """Return the Hamming distance between two 64-bit pHashes given as 16 hex chars."""
    for value in (a_hex, b_hex):
        if len(value) != PHASH_HEX_LENGTH:
            raise ValueError(f"perceptual hash must be {PHASH_HEX_LENGTH} hex chars, got {value!r}")
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()


def guess_mime(path: str | os.PathLike[str]) -> str:
    """Return the media type by file name, else by leading magic bytes, else application/octet-stream."""
    by_name = mimetypes.guess_type(Path(path).name)[0]
    if by_name:
        return by_name
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise IngestError(str(path), exc.strerror or str(exc)) from exc
    for offset, magic, mime in MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return mime
    return OCTET_STREAM


def fingerprint(path: str | os.PathLike[str]) -> Fingerprint:
    """Identify one file and, if it is a decodable image, compute its pHash through the one fixed decode path."""
    name = str(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        mime = guess_mime(path)
        reason = f"decompression bomb guard: {_describe(exc).split(', could be')[0]}"
        return Fingerprint(None, reason, derive_origin_type(mime), mime, None, None)
    except UnidentifiedImageError:
        return _not_decodable(path)
    except OSError as exc:
        if exc.errno is not None:
            raise IngestError(name, exc.strerror or _describe(exc)) from exc
        raise IngestError(name, f"unreadable image header: {_describe(exc)}") from exc
    except Exception as exc:
        raise IngestError(name, f"unreadable image header: {_describe(exc)}") from exc
    with image:
        mime = _image_mime(image, path)
        if not mime.startswith("image/"):
            return Fingerprint(None, f"not an image ({mime})", derive_origin_type(mime), mime, None, None)
        exif = _read_exif(image)
        camera = any(isinstance(exif.get(tag), str) and exif[tag].strip("\x00 ") for tag in (EXIF_MAKE, EXIF_MODEL))
        width, height = image.size
        if exif.get(EXIF_ORIENTATION) in QUARTER_TURNS:
            width, height = height, width
        try:
            _check_chunks(image, path)
            perceptual = _phash(image)
        except Exception as exc:
            raise IngestError(name, f"corrupt {image.format} image: {_describe(exc)}") from exc
    return Fingerprint(perceptual, None, derive_origin_type(mime, camera), mime, width, height)


def _check_chunks(image: Image.Image, path: str | os.PathLike[str]) -> None:
    """Check every chunk checksum of a PNG (decoding skips those of its image data); raise on a bad one."""
    if image.format == "PNG":
        with Image.open(path) as again:
            again.verify()


def _phash(image: Image.Image) -> str:
    """Decode (JPEGs in draft mode, always), apply EXIF orientation and return the 64-bit pHash as hex."""
    if isinstance(image, JpegImageFile):
        image.draft("L", DRAFT_SIZE)
    upright = ImageOps.exif_transpose(image)
    return str(imagehash.phash(upright))


def _not_decodable(path: str | os.PathLike[str]) -> Fingerprint:
    """Fingerprint a file Pillow does not recognise; refuse one whose name claims a format Pillow reads."""
    mime = guess_mime(path)
    format_name = Image.registered_extensions().get(Path(path).suffix.lower())
    if mime.startswith("image/") and format_name in Image.OPEN:
        raise IngestError(str(path), f"not a valid {format_name} image: {_complaint(path, format_name)}")
    reason = f"image format not decodable here ({mime})" if mime.startswith("image/") else f"not an image ({mime})"
    return Fingerprint(None, reason, derive_origin_type(mime), mime, None, None)


def _complaint(path: str | os.PathLike[str], format_name: str) -> str:
    """Why a file is not the format its name claims: it is empty or HTML, else that format's parser's complaint."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        return "the file is empty"
    if looks_like_html(head):
        return "the content is HTML"
    try:
        Image.OPEN[format_name][0](path).close()
    except Exception as exc:
        return _describe(exc)
    return "content not recognised"


def _image_mime(image: Image.Image, path: str | os.PathLike[str]) -> str:
    """Return the media type of an opened image (MPO camera files count as JPEG)."""
    if isinstance(image, JpegImageFile):
        return "image/jpeg"
    return image.get_format_mimetype() or mimetypes.guess_type(Path(path).name)[0] or f"image/{str(image.format).lower()}"


def _read_exif(image: Image.Image) -> Image.Exif | dict[int, object]:
    """Return the image's EXIF tags; malformed EXIF counts as none."""
    try:
        return image.getexif()
    except Exception:
        return {}


def _describe(exc: BaseException) -> str:
    """Return an exception's message on one line, or its type name if it has none."""
    return " ".join(str(exc).split()) or type(exc).__name__
