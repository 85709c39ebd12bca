"""Named lifecycles and single events for `provsim trigger`: realistic, internally consistent, for one item."""
from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from emitter.event import Event

from . import royal_events, tectra_events
from .chain import AnchorReceipt
from .event_schemas import DIALECT_OF
from .store import Store
from .synthetic import EventStream, events
from .verify import chain_match, phash_match, score, sha256_match, watermark_match


@dataclass(frozen=True)
class Scenario:
    """A named lifecycle of one item: its dialect, a line saying what it shows, and how to build it."""

    dialect: str
    description: str
    build: Callable[[EventStream], list[Event]]


def _lifecycle(stream: EventStream, count: int) -> list[Event]:
    """The first `count` events of a one-record-per-batch stream: one item's lifecycle in order."""
    return [next(stream).event for _ in range(count)]


def _reorg(stream: EventStream) -> list[Event]:
    """complete, then the same complete with removed: true (its block left the chain), then complete again."""
    [complete] = _lifecycle(stream, 1)
    removed = copy.deepcopy(complete.data)
    removed["transaction"]["removed"] = True
    again = copy.deepcopy(complete.data)
    tx = again["transaction"]
    tx["block_number"] += 1
    tx["block_hash"] = "0x" + stream.rng.randbytes(32).hex()
    return [complete, Event.new(complete.type, removed), Event.new(complete.type, again)]


def _tampered(stream: EventStream) -> list[Event]:
    """content.signed and batch.anchored of an item, then the verification of an altered copy: not authentic."""
    signed, anchored, _ = _lifecycle(stream, 3)
    checks = {
        "watermark": watermark_match(None), "sha256": sha256_match(None),
        "perceptual_hash": phash_match(None), "blockchain": chain_match(None),
    }
    authentic, confidence = score(checks)
    verified = tectra_events.content_verified(authentic, confidence, None, checks, None)
    return [signed, anchored, Event.new(tectra_events.CONTENT_VERIFIED, verified)]


TECTRA_LIFECYCLE = dict.fromkeys(tectra_events.TECTRA_EVENTS, 1.0)
ROYAL_LIFECYCLE = dict.fromkeys(royal_events.ROYAL_EVENTS, 1.0)
MANUAL = dict.fromkeys(royal_events.STANDARD_EVENTS, 1.0)

SCENARIOS: dict[str, Scenario] = {
    "tectra.sign-anchor-verify": Scenario("tectra", "content.signed, batch.anchored listing it, content.verified (authentic)",
                                          lambda stream: _lifecycle(stream, 3)),
    "tectra.verify-tampered": Scenario("tectra", "content.signed and batch.anchored, then content.verified of an altered copy (authentic false)",
                                       _tampered),
    "royal.api-registration": Scenario("royal", "an API registration: hashed, submitted, complete, nft_added, with a context",
                                       lambda stream: _lifecycle(stream, 4)),
    "royal.manual-registration": Scenario("royal", "a manual registration: only complete and nft_added",
                                          lambda stream: _lifecycle(stream, 2)),
    "royal.reorg": Scenario("royal", "complete, then complete with removed: true after a reorg, then complete again",
                            _reorg),
}
_MIXES = {"tectra.sign-anchor-verify": TECTRA_LIFECYCLE, "tectra.verify-tampered": TECTRA_LIFECYCLE,
          "royal.api-registration": ROYAL_LIFECYCLE, "royal.manual-registration": MANUAL,
          "royal.reorg": {royal_events.COMPLETE: 1.0}}
EXAMPLE_CONTEXT = {"user_id": "12345", "transaction_ref": "tx_abc123"}


def scenario_events(name: str, seed: int | None = None, context: dict | None = None) -> list[Event]:
    """The events of a named scenario, in order; ValueError naming the scenarios for an unknown name."""
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise ValueError(f"unknown scenario {name!r}: choose from {', '.join(SCENARIOS)}")
    if context is None and name == "royal.api-registration":
        context = EXAMPLE_CONTEXT
    return scenario.build(events(scenario.dialect, _MIXES[name], seed, batch_size=1, context=context))


def event_of(event_type: str, seed: int | None = None, context: dict | None = None,
             overrides: Mapping[str, object] | None = None) -> Event:
    """One event of any type, consistent with silently made predecessors, with `overrides` applied."""
    dialect = DIALECT_OF.get(event_type)
    if dialect is None:
        raise ValueError(f"unknown event {event_type!r}: choose from {', '.join(DIALECT_OF)}")
    lifecycle = TECTRA_LIFECYCLE if dialect == "tectra" else ROYAL_LIFECYCLE
    stream = events(dialect, lifecycle, seed, batch_size=1, context=context)
    event = next(item.event for item in stream if item.event.type == event_type)
    return override(event, overrides or {})


def override(event: Event, overrides: Mapping[str, object]) -> Event:
    """The event with each dotted path set ("data.context.user_id", "timestamp"); ValueError on a bad path."""
    data = copy.deepcopy(event.data)
    timestamp = event.timestamp
    for path, value in overrides.items():
        head, _, rest = path.partition(".")
        if head == "timestamp" and not rest:
            timestamp = str(value)
            continue
        if head != "data" or not rest:
            raise ValueError(f"--set {path}: only data.<field>... and timestamp can be set")
        target = data
        *parents, last = rest.split(".")
        for key in parents:
            if not isinstance(target.setdefault(key, {}), dict):
                raise ValueError(f"--set {path}: {key} is not an object")
            target = target[key]
        target[last] = value
    return dataclasses.replace(event, data=data, timestamp=timestamp)


def parse_setting(text: str) -> tuple[str, object]:
    """A --set item "path=value": the value as JSON when it parses (42, true, {"a":1}), else as a string."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise ValueError(f"--set {text!r}: write PATH=VALUE, e.g. data.context.user_id=42")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return path.strip(), value


def from_record(store: Store, event_type: str, record_id: str) -> Event:
    """The event of this type about a stored record, as the service announced (or would announce) it."""
    rec = store.record(record_id)
    if rec is None:
        raise ValueError(f"record {record_id}: not found in {store.path}")
    batch = store.batch(rec.batch_id) if rec.batch_id else None
    anchored = batch is not None and batch.status == "anchored"
    if event_type == tectra_events.CONTENT_SIGNED and rec.sha256 is not None:
        return Event.new(event_type, tectra_events.content_signed(rec), rec.signed_at)
    if event_type == royal_events.HASHED:
        return Event.new(event_type, royal_events.hashed(rec), rec.signed_at)
    if event_type == tectra_events.BATCH_ANCHORED and anchored:
        return Event.new(event_type, tectra_events.batch_anchored(batch, [r.id for r in store.batch_records(batch.id)]))
    receipt = AnchorReceipt(batch.tx_hash, batch.block_hash, batch.block_number, batch.chain_id, batch.log_index,
                            batch.transaction_index, False, batch.gas_used) if anchored else None
    if event_type == royal_events.SUBMITTED and anchored:
        return Event.new(event_type, royal_events.submitted(rec, batch.tx_hash))
    if event_type == royal_events.COMPLETE and anchored:
        return Event.new(event_type, royal_events.complete(rec, receipt))
    nft = store.nft(rec.id)
    if event_type == royal_events.NFT_ADDED and nft is not None:
        minted = AnchorReceipt(nft["transaction_hash"], nft["block_hash"], nft["block_number"], nft["chain_id"],
                               nft["log_index"], nft["transaction_index"], False, 0)
        return Event.new(event_type, royal_events.nft_added(rec, minted, nft["contract"], nft["token_id"],
                                                            nft["log_index"]))
    if event_type not in DIALECT_OF:
        raise ValueError(f"unknown event {event_type!r}: choose from {', '.join(DIALECT_OF)}")
    if event_type == tectra_events.CONTENT_VERIFIED:
        raise ValueError("content.verified comes from verifying a file: use provsim verify FILE")
    raise ValueError(f"record {record_id}: has no {event_type} yet (not anchored, no NFT, or no SHA-256)")
