"""Clock: real now(), scaled waits, ISO UTC formatting."""

import asyncio
import time

import pytest

from emitter.clock import Clock, iso_utc


def test_iso_utc_second_precision_with_z() -> None:
    assert iso_utc(1749893520.0) == "2025-06-14T09:32:00Z"
    assert iso_utc(1749893520.999) == "2025-06-14T09:32:00Z"


def test_now_is_real_epoch_time() -> None:
    before = time.time()
    assert before <= Clock(0.001).now() <= time.time()


def test_scaled() -> None:
    assert Clock().scaled(60.0) == 60.0
    assert Clock(0.001).scaled(300.0) == pytest.approx(0.3)


def test_negative_time_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="time_scale"):
        Clock(-1.0)


def test_sleep_lasts_the_scaled_time() -> None:
    started = time.monotonic()
    asyncio.run(Clock(0.001).sleep(60.0))
    elapsed = time.monotonic() - started
    assert 0.06 <= elapsed < 60.0
