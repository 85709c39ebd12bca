"""Fixtures for the end-to-end tests."""
from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import make_images


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """A directory of 12 generated images and one text file."""
    d = tmp_path / "media"
    make_images(d, 12)
    (d / "notes.txt").write_text("not an image\n")
    return d
