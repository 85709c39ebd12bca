"""Deeply nested JSON is refused before the parser sees it, and a receiver survives it."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from emitter import safejson
from emitter.endpoint import new_secret
from emitter.receiver import Receiver


@pytest.mark.parametrize("text, deep", [
    (b'{"a": [1, 2, {"b": 3}]}', False),
    (b"[" * 64 + b"]" * 64, False),
    (b"[" * 65 + b"]" * 65, True),
    (b'["' + b"[" * 1000 + b'"]', False),  # brackets inside a string do not nest
    (b"[]" * 5000, False),
])
def test_too_deep(text, deep):
    assert safejson.too_deep(text) is deep


def test_loads_refuses_deep_and_parses_the_rest():
    assert safejson.loads('{"x": [1]}') == {"x": [1]}
    with pytest.raises(ValueError, match="deeper than 64"):
        safejson.loads(b"[" * 100_000)


@pytest.mark.parametrize("dialect", ["tectra", "royal"])
def test_receiver_answers_a_deep_body_and_keeps_serving(tmp_path, dialect):
    async def scenario():
        rx = Receiver(new_secret(), dialect=dialect, dump_path=tmp_path / "dump.jsonl")
        port = await rx.start()
        async with httpx.AsyncClient() as client:
            bad = await client.post(f"http://127.0.0.1:{port}/", content=b"[" * 300_000)
            again = await client.post(f"http://127.0.0.1:{port}/", content=b"{}")
        await rx.stop()
        return bad.status_code, again.status_code

    assert asyncio.run(scenario()) == (401, 401)
