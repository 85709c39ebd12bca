"""The batcher closes at N leaves or T seconds after the first leaf, whichever comes first."""
from __future__ import annotations

import asyncio

import pytest

from pipeline.batcher import Batcher


def test_closes_at_size():
    async def scenario():
        closed = []
        b = Batcher(3, 60.0, closed.append)
        for i in range(7):
            b.add(f"r{i}")
        return closed

    assert asyncio.run(scenario()) == [["r0", "r1", "r2"], ["r3", "r4", "r5"]]


def test_closes_after_interval_from_the_first_leaf():
    async def scenario():
        closed = []
        b = Batcher(100, 0.05, closed.append)
        b.add("a")
        await asyncio.sleep(0.02)
        b.add("b")
        before = list(closed)
        await asyncio.sleep(0.06)
        return before, closed

    before, after = asyncio.run(scenario())
    assert before == [] and after == [["a", "b"]]


def test_flush_closes_the_open_batch_and_cancels_its_timer():
    async def scenario():
        closed = []
        b = Batcher(100, 0.02, closed.append)
        b.add("x")
        b.flush()
        b.flush()
        await asyncio.sleep(0.05)
        return closed

    assert asyncio.run(scenario()) == [["x"]]


@pytest.mark.parametrize("size, interval", [(0, 1.0), (1, 0.0)])
def test_refuses_nonsense_settings(size, interval):
    with pytest.raises(ValueError):
        Batcher(size, interval, lambda ids: None)
