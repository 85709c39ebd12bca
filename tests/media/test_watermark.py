"""The watermark itself: payload, embed/read round trip, quality, and each everyday transformation once."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import watermark
from pipeline.digest import IngestError, hash_file
from pipeline.marking import copy_name, mark_file, read_file
from copies import DEFEATED, SURVIVED

SAMPLES = Path(__file__).resolve().parents[2] / "sample_media"
SIGNATURE = "5a" * 64
PAYLOAD = hashlib.sha256(bytes.fromhex(SIGNATURE)).digest()[:16]
KEY = bytes(range(32))  # a deployment's watermark key


def test_payload_is_the_first_16_bytes_of_sha256_of_the_signature():
    assert watermark.payload_of(SIGNATURE) == PAYLOAD
    assert len(PAYLOAD) * 8 == watermark.PAYLOAD_BITS == 128


def test_bit_errors_count_differing_bits():
    assert watermark.bit_errors(PAYLOAD, PAYLOAD) == 0
    flipped = bytes([PAYLOAD[0] ^ 0b1000_0001]) + PAYLOAD[1:-1] + bytes([PAYLOAD[-1] ^ 1])
    assert watermark.bit_errors(PAYLOAD, flipped) == 3


def independent_psnr(a: Image.Image, b: Image.Image) -> float:
    """PSNR written out here, not taken from the module under test."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return 10 * np.log10(255**2 / np.mean(diff**2))


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.*g")))
def test_round_trip_reads_the_payload_exactly_at_38_db_or_better(name: str):
    original = Image.open(SAMPLES / name).convert("RGB")
    marked = watermark.embed(original, PAYLOAD, KEY)
    assert marked.size == original.size and marked.mode == "RGB"
    assert marked.tobytes() != original.tobytes()
    assert independent_psnr(original, marked) >= 38.0
    assert watermark.read(marked, KEY) == PAYLOAD


def test_an_unmarked_image_reads_as_noise_far_from_any_payload():
    errors = [watermark.bit_errors(watermark.read(Image.open(p), KEY), PAYLOAD) for p in SAMPLES.glob("*.*g")]
    assert min(errors) > 30  # a match needs 6 or fewer


def test_without_the_key_the_mark_reads_as_noise(marked_harbor: Image.Image):
    assert watermark.read(marked_harbor, KEY) == PAYLOAD
    assert watermark.bit_errors(watermark.read(marked_harbor, bytes(32)), PAYLOAD) > 30


def test_grey_and_transparent_images_keep_their_mode_and_alpha():
    rgba = Image.open(SAMPLES / "shapes.png").convert("RGBA")
    alpha = Image.linear_gradient("L").resize(rgba.size)
    rgba.putalpha(alpha)
    marked = watermark.embed(rgba, PAYLOAD, KEY)
    assert marked.mode == "RGBA" and marked.getchannel("A").tobytes() == alpha.tobytes()
    assert watermark.read(marked, KEY) == PAYLOAD
    grey = watermark.embed(Image.open(SAMPLES / "landscape.jpg").convert("L"), PAYLOAD, KEY)
    assert grey.mode == "L" and watermark.read(grey, KEY) == PAYLOAD


def test_strength_is_capped_by_psnr_on_hard_content():
    # Random 8x8 blocks fight the embedding hardest: the changes are scaled down to 40 dB, never past it.
    rng = np.random.default_rng(3)
    blocks = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((640, 480), Image.NEAREST)
    assert independent_psnr(blocks, watermark.embed(blocks, PAYLOAD, KEY)) >= watermark.MIN_PSNR - 0.05


@pytest.fixture(scope="module")
def marked_harbor() -> Image.Image:
    return watermark.embed(Image.open(SAMPLES / "harbor.jpg"), PAYLOAD, KEY)


@pytest.mark.parametrize("name", SURVIVED)
def test_payload_survives(marked_harbor: Image.Image, name: str):
    assert watermark.bit_errors(watermark.read(SURVIVED[name](marked_harbor), KEY), PAYLOAD) \
        <= watermark.MATCH_BIT_ERRORS


@pytest.mark.parametrize("name", DEFEATED)
def test_payload_is_lost_to_geometric_changes(marked_harbor: Image.Image, name: str):
    assert watermark.bit_errors(watermark.read(DEFEATED[name](marked_harbor), KEY), PAYLOAD) > 30


def test_mark_file_writes_a_copy_that_reads_back_and_hashes_as_reported(tmp_path: Path):
    dest = tmp_path / copy_name("rec-1", "harbor.jpg", "image/jpeg")
    copy = mark_file(str(SAMPLES / "harbor.jpg"), str(dest), PAYLOAD, KEY)
    assert dest == tmp_path / "rec-1" / "harbor.marked.jpg" and copy.path == str(dest)
    assert (copy.sha256, copy.size) == (hash_file(dest).sha256, dest.stat().st_size)
    assert copy.psnr >= 38.0
    assert read_file(str(dest), KEY) == PAYLOAD
    assert [p.name for p in dest.parent.iterdir()] == ["harbor.marked.jpg"]  # no temporary file left


def test_copy_names_keep_a_safe_stem_and_a_lossless_format_for_non_jpegs():
    assert copy_name("r", "../we ird?.png", "image/png") == "r/we_ird.marked.png"
    assert copy_name("r", "photo.webp", "image/webp") == "r/photo.marked.png"
    assert copy_name("r", "...", "image/gif") == "r/image.marked.png"


def test_an_image_too_small_to_carry_the_payload_is_refused_in_one_line(tmp_path: Path):
    small = tmp_path / "icon.png"
    Image.new("RGB", (200, 100), "teal").save(small)
    with pytest.raises(IngestError) as caught:
        mark_file(str(small), str(tmp_path / "out" / "icon.marked.png"), PAYLOAD, KEY)
    assert str(caught.value) == f"{small}: too small to watermark (200x100; 128 px a side at least)"
    assert not (tmp_path / "out" / "icon.marked.png").exists()


def test_a_copy_whose_payload_does_not_read_back_is_not_kept(tmp_path: Path):
    # Pure black-and-white noise: every change clips at 0 or 255, so the payload cannot be carried.
    noise = tmp_path / "noise.png"
    bits = np.random.default_rng(1).integers(0, 2, (128, 128)) * 255
    Image.fromarray(bits.astype(np.uint8)).save(noise)
    with pytest.raises(IngestError, match=r"noise.png: not watermarked: the payload did not read back from the marked"
                                          r" copy \(\d+ of 128 bits wrong\)$"):
        mark_file(str(noise), str(tmp_path / "out" / "noise.marked.png"), PAYLOAD, KEY)
    assert list((tmp_path / "out").iterdir()) == []


def test_read_file_of_something_that_is_not_an_image_is_none():
    assert read_file(str(SAMPLES / "notes.txt"), KEY) is None
