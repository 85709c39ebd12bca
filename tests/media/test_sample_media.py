"""Tests that tools/make_sample_media.py reproduces the committed sample_media/ exactly."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_tool():
    """The generator script as a module."""
    spec = importlib.util.spec_from_file_location("make_sample_media", ROOT / "tools" / "make_sample_media.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_is_deterministic_and_matches_the_committed_files():
    files = load_tool().build()
    assert files == {name: (ROOT / "sample_media" / name).read_bytes() for name in files}
    on_disk = (p.relative_to(ROOT / "sample_media").as_posix() for p in (ROOT / "sample_media").rglob("*"))
    assert sorted(name for name in on_disk if "." in name) == sorted(files)
    assert sum(map(len, files.values())) < 2 * 2**20
    images = [name for name in files if name.endswith((".jpg", ".png"))]
    assert len(images) >= 8
    assert {"harbor.jpg", "copies/harbor_resized.jpg", "copies/harbor_recompressed.jpg", "notes.txt"} <= set(files)
