"""Event: ids, timestamps, immutability."""

import dataclasses
import re

import pytest

from emitter.event import Event


def test_new_generates_id_and_timestamp() -> None:
    event = Event.new("content.signed", {"record_id": "r1"})
    assert re.fullmatch(r"evt_[0-9a-f]{32}", event.id)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event.timestamp)
    assert event.idempotency_key is None
    assert Event.new("content.signed", {}).id != event.id


def test_new_keeps_given_timestamp_and_key() -> None:
    event = Event.new("batch.anchored", {"leaf_count": 2}, timestamp="2025-06-14T09:33:12Z", idempotency_key="b1")
    assert (event.type, event.data, event.timestamp, event.idempotency_key) == (
        "batch.anchored",
        {"leaf_count": 2},
        "2025-06-14T09:33:12Z",
        "b1",
    )


def test_event_is_frozen() -> None:
    event = Event.new("content.signed", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.type = "content.verified"  # type: ignore[misc]
