"""Tests of pipeline.analyze: the process-pool worker function and its picklable errors."""

import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from pipeline.analyze import Analysis, analyze_file
from pipeline.digest import IngestError, hash_file
from pipeline.fingerprint import PHASH_THRESHOLD, fingerprint, phash_distance

SAMPLES = Path(__file__).resolve().parents[2] / "sample_media"
BIG = 500 * 2**20


def test_analysis_combines_digest_and_fingerprint():
    path = str(SAMPLES / "harbor.jpg")
    assert analyze_file(path, BIG, BIG) == Analysis(hash_file(path), fingerprint(path))


def test_image_cap_applies_to_images_only():
    with pytest.raises(IngestError, match=r"harbor\.jpg: file is \d+ bytes, over the cap of 1000 bytes"):
        analyze_file(str(SAMPLES / "harbor.jpg"), 1000, BIG)
    notes = analyze_file(str(SAMPLES / "notes.txt"), 10, 10_000)
    assert notes.fingerprint.perceptual_hash is None
    with pytest.raises(IngestError, match="over the cap of 100 bytes"):
        analyze_file(str(SAMPLES / "notes.txt"), 10, 100)


def test_results_and_errors_cross_a_real_process_pool(tmp_path: Path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((SAMPLES / "harbor.jpg").read_bytes()[:5000])
    with ProcessPoolExecutor(max_workers=1) as pool:
        good = pool.submit(analyze_file, str(SAMPLES / "copies" / "harbor_resized.jpg"), BIG, BIG)
        bad = pool.submit(analyze_file, str(broken), BIG, BIG)
        missing = pool.submit(analyze_file, str(tmp_path / "gone.png"), BIG, BIG)
        copy_hash = good.result(timeout=20).fingerprint.perceptual_hash
        assert phash_distance(copy_hash, fingerprint(SAMPLES / "harbor.jpg").perceptual_hash) <= PHASH_THRESHOLD
        error = bad.exception(timeout=20)
        assert isinstance(error, IngestError)
        assert str(error).startswith(f"{broken}: corrupt JPEG image: image file is truncated")
        assert str(missing.exception(timeout=20)) == f"{tmp_path / 'gone.png'}: No such file or directory"


def test_special_files_are_refused_without_blocking(tmp_path: Path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(IngestError, match=r"pipe\.jpg: not a regular file"):
        analyze_file(str(fifo), BIG, BIG)
    with pytest.raises(IngestError, match="not a regular file"):
        analyze_file(str(tmp_path), BIG, BIG)


def test_analysis_and_error_pickle():
    analysis = analyze_file(str(SAMPLES / "notes.txt"), BIG, BIG)
    assert pickle.loads(pickle.dumps(analysis)) == analysis
    error = IngestError("x.jpg", "corrupt JPEG image: image file is truncated")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
