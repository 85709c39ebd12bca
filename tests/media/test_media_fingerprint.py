"""Tests of pipeline.fingerprint on the committed sample media and on broken or hostile files."""

import io
import itertools
import struct
import zlib
from pathlib import Path

import imagehash
import pytest
from PIL import Image, ImageOps

from pipeline.digest import IngestError
from pipeline.fingerprint import (
    DRAFT_SIZE,
    PHASH_THRESHOLD,
    Fingerprint,
    derive_origin_type,
    fingerprint,
    phash_distance,
)

SAMPLES = Path(__file__).resolve().parents[2] / "sample_media"
ORIGINAL = SAMPLES / "harbor.jpg"
COPIES = [SAMPLES / "copies" / "harbor_resized.jpg", SAMPLES / "copies" / "harbor_recompressed.jpg"]
UNRELATED = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".jpg", ".png") and not p.name.startswith("harbor_"))


def phash_of(path: Path) -> str:
    value = fingerprint(path).perceptual_hash
    assert value is not None and len(value) == 16
    return value


def test_copies_match_their_original():
    for copy in COPIES:
        assert phash_distance(phash_of(ORIGINAL), phash_of(copy)) <= PHASH_THRESHOLD


def test_unrelated_images_do_not_match():
    assert len(UNRELATED) >= 8
    for a, b in itertools.combinations(UNRELATED, 2):
        assert phash_distance(phash_of(a), phash_of(b)) > PHASH_THRESHOLD, (a.name, b.name)


def test_origin_types_and_sizes():
    assert fingerprint(ORIGINAL) == Fingerprint(phash_of(ORIGINAL), None, "camera_image", "image/jpeg", 1024, 768)
    resized = fingerprint(SAMPLES / "copies" / "harbor_resized.jpg")
    assert (resized.origin_type, resized.width, resized.height) == ("digital_image", 512, 384)
    assert fingerprint(SAMPLES / "shapes.png").mime == "image/png"


def test_non_image_has_null_hash_and_reason():
    assert fingerprint(SAMPLES / "notes.txt") == Fingerprint(
        None, "not an image (text/plain)", "document", "text/plain", None, None
    )


def test_jpeg_decode_path_is_the_fixed_draft_path():
    for path in sorted(SAMPLES.glob("*.jpg")):
        with Image.open(path) as image:
            image.draft("L", DRAFT_SIZE)
            reference = str(imagehash.phash(ImageOps.exif_transpose(image)))
        assert phash_of(path) == reference, path.name


def test_exif_orientation_is_applied(tmp_path: Path):
    with Image.open(ORIGINAL) as image:
        upright = image.convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = tmp_path / "rotated.jpg"
    stored.save(rotated, quality=90, exif=exif)
    result = fingerprint(rotated)
    assert (result.width, result.height) == (1024, 768)
    assert phash_distance(result.perceptual_hash, phash_of(ORIGINAL)) <= PHASH_THRESHOLD


def test_truncated_jpeg_is_a_clean_error(tmp_path: Path):
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(ORIGINAL.read_bytes()[:20_000])
    with pytest.raises(IngestError) as info:
        fingerprint(truncated)
    message = str(info.value)
    assert message.startswith(f"{truncated}: corrupt JPEG image: image file is truncated")
    assert "\n" not in message


def test_header_only_jpeg_is_a_clean_error(tmp_path: Path):
    stub = tmp_path / "stub.jpg"
    stub.write_bytes(ORIGINAL.read_bytes()[:300])
    with pytest.raises(IngestError, match=r"stub\.jpg: "):
        fingerprint(stub)


def test_text_named_jpeg_is_refused_but_unknown_image_formats_are_not(tmp_path: Path):
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"just text")
    with pytest.raises(IngestError, match="not a valid JPEG image"):
        fingerprint(fake)
    heic = tmp_path / "phone.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic")
    assert fingerprint(heic) == Fingerprint(
        None, "image format not decodable here (image/heic)", "digital_image", "image/heic", None, None
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming width x height pixels with an empty image stream."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [10_000, 20_000])
def test_decompression_bomb_gets_null_hash_and_reason(tmp_path: Path, side: int):
    assert side * side > Image.MAX_IMAGE_PIXELS
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(side, side))
    result = fingerprint(bomb)
    assert result.perceptual_hash is None
    assert result.reason == (
        f"decompression bomb guard: Image size ({side * side} pixels) exceeds limit of "
        f"{Image.MAX_IMAGE_PIXELS * (1 if side == 10_000 else 2)} pixels"
    )
    assert (result.mime, result.origin_type) == ("image/png", "digital_image")


def test_unknown_binary_is_sniffed_by_magic(tmp_path: Path):
    for name, data, mime, origin in [
        ("clip", b"\x00\x00\x00\x18ftypmp42" + bytes(32), "video/mp4", "video"),
        ("paper", b"%PDF-1.7\n", "application/pdf", "document"),
        ("blob", b"\x00\x01\x02", "application/octet-stream", "other"),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        assert fingerprint(path) == Fingerprint(None, f"not an image ({mime})", origin, mime, None, None)


def test_camera_exif_on_png(tmp_path: Path):
    exif = Image.Exif()
    exif[0x0110] = "Model Only"
    path = tmp_path / "cam.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, "PNG", exif=exif)
    path.write_bytes(buffer.getvalue())
    assert fingerprint(path).origin_type == "camera_image"


def test_derive_origin_type():
    assert derive_origin_type("image/jpeg", has_camera_exif=True) == "camera_image"
    assert derive_origin_type("image/png") == "digital_image"
    assert derive_origin_type("video/mp4") == "video"
    assert derive_origin_type("audio/mpeg") == "audio"
    assert derive_origin_type("application/pdf") == "document"
    assert derive_origin_type("text/plain; charset=utf-8") == "document"
    assert derive_origin_type("application/vnd.openxmlformats-officedocument.wordprocessingml.document") == "document"
    assert derive_origin_type("application/zip") == "other"


def test_phash_distance():
    assert phash_distance("0" * 16, "f" * 16) == 64
    assert phash_distance("96ea6d094ab69b49", "96ea6d094ab69b49") == 0
    assert phash_distance("0000000000000000", "0000000000000103") == 3
    with pytest.raises(ValueError):
        phash_distance("abc", "0" * 16)
