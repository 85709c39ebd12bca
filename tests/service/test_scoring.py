"""Tectra's confidence rule: each of four checks weighs 25%; authentic at 2 of 4."""
from __future__ import annotations

import pytest

from pipeline.verify import CHECKS, score


def checks(*passing: str) -> dict:
    """A checks object where the named checks passed."""
    return {name: {"passed": name in passing, "details": ""} for name in CHECKS}


@pytest.mark.parametrize("passing, authentic, confidence", [
    ((), False, 0.0),
    (("blockchain",), False, 0.25),
    (("sha256", "blockchain"), True, 0.5),
    (("watermark", "sha256", "perceptual_hash"), True, 0.75),  # the seed's example
    (CHECKS, True, 1.0),
])
def test_score(passing, authentic, confidence):
    assert score(checks(*passing)) == (authentic, confidence)


def test_the_four_checks_are_the_seeds():
    assert set(CHECKS) == {"watermark", "sha256", "perceptual_hash", "blockchain"}
