"""Tests of pipeline.digest: one-pass SHA-256 + BLAKE3, caps, and the IngestError type."""

import hashlib
import os
import pickle
import random
from pathlib import Path

import blake3
import pytest

from pipeline.digest import CHUNK_SIZE, Digest, IngestError, StreamHasher, hash_file


def expected(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest(), blake3.blake3(data).hexdigest(), len(data))


def test_known_vectors():
    assert one_shot(b"") == Digest(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        0,
    )
    hasher = StreamHasher()
    hasher.update(b"abc")
    assert hasher.digest() == Digest(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
        3,
    )


def one_shot(data: bytes) -> Digest:
    hasher = StreamHasher()
    hasher.update(data)
    return hasher.digest()


@pytest.mark.parametrize("chunk", [1, 7, 4096, 65536, CHUNK_SIZE])
def test_hash_file_matches_hashlib_across_chunk_boundaries(tmp_path: Path, chunk: int):
    data = random.Random(chunk).randbytes(3 * 65536 + 1) if chunk > 1 else b"x" * 1000 + b"\x00y"
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    assert hash_file(path, chunk=chunk) == expected(data)


def test_stream_hasher_split_points_do_not_matter():
    data = random.Random(1).randbytes(200_000)
    for cuts in ([], [1], [64, 65, 1024], [99_999, 100_000, 199_999], list(range(0, 200_000, 4097))):
        hasher = StreamHasher()
        bounds = [0, *cuts, len(data)]
        for start, end in zip(bounds, bounds[1:]):
            hasher.update(memoryview(data)[start:end])
        assert hasher.digest() == expected(data)
        assert hasher.size == len(data)


def test_cap_is_inclusive_and_refuses_one_byte_more(tmp_path: Path):
    path = tmp_path / "ten.bin"
    path.write_bytes(b"0123456789")
    assert hash_file(path, cap=10).size == 10
    with pytest.raises(IngestError) as info:
        hash_file(path, cap=9)
    assert str(info.value) == f"{path}: file is 10 bytes, over the cap of 9 bytes"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_cap_enforced_while_streaming_when_size_is_unknown():
    with pytest.raises(IngestError, match="grew past the cap of 3000000 bytes"):
        hash_file("/dev/zero", cap=3_000_000)


def test_missing_file_is_an_ingest_error(tmp_path: Path):
    with pytest.raises(IngestError) as info:
        hash_file(tmp_path / "nope.bin")
    assert str(info.value) == f"{tmp_path / 'nope.bin'}: No such file or directory"


def test_ingest_error_is_one_line_and_pickles():
    error = IngestError("a\nb  c.jpg", "bad\n  thing\r\nhappened")
    assert str(error) == "a b  c.jpg: bad thing happened"
    clone = pickle.loads(pickle.dumps(error))
    assert isinstance(clone, IngestError)
    assert (clone.item, clone.cause, str(clone)) == (error.item, error.cause, str(error))
