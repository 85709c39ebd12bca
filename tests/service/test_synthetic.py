"""Synthetic event streams: true hashes, signatures and roots, causal order per group, and the asked mix."""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections import Counter
from pathlib import Path

import blake3
import pytest
from eth_utils import keccak

from emitter.loaditem import LoadItem
from pipeline.fingerprint import fingerprint
from pipeline.merkle import MerkleTree
from pipeline.royal_events import COMPLETE, HASHED, NFT_ADDED, ROYAL_EVENTS, SUBMITTED
from pipeline.signing import signing_message, verify_signature
from pipeline.synthetic import (CHAIN_ID, DIALECT_EVENTS, NFT_ADDRESS, default_mix, events, parse_mix,
                                picture_pool, sample_context)
from pipeline.tectra_events import BATCH_ANCHORED, CONTENT_SIGNED, CONTENT_VERIFIED
from pipeline.verify import score

SEED = json.loads((Path(__file__).parents[1] / "vectors" / "tectra-payloads.json").read_text())
HASH = re.compile(r"0x[0-9a-f]{64}")
ROYAL_STAGE = {event_type: stage for stage, event_type in enumerate(ROYAL_EVENTS)}


def take(stream, count: int) -> list[LoadItem]:
    """The first `count` items of a stream."""
    return list(itertools.islice(stream, count))


def content_of(seed: int, record_id: str, sha256: str) -> bytes:
    """The bytes a record was hashed from: a pooled picture tagged with the record id."""
    matches = [c for c in (p.content(record_id) for p in picture_pool(seed)) if hashlib.sha256(c).hexdigest() == sha256]
    assert len(matches) == 1, f"no pooled picture tagged {record_id} hashes to {sha256}"
    return matches[0]


def check_tectra_order(items: list[LoadItem]) -> None:
    """content.signed before the batch.anchored listing it before its content.verified; groups as documented."""
    signed, anchored = set(), set()
    for item in items:
        data = item.event.data
        if item.event.type == CONTENT_SIGNED:
            assert item.group == data["record_id"]
            assert data["record_id"] not in signed | anchored
            signed.add(data["record_id"])
        elif item.event.type == BATCH_ANCHORED:
            assert item.group == data["batch_id"]
            assert anchored.isdisjoint(data["record_ids"])
            anchored.update(data["record_ids"])
        else:
            assert item.group == data["record_id"]
            assert data["record_id"] in anchored or data["record_id"] not in signed


def check_royal_order(items: list[LoadItem]) -> None:
    """Per registration: hashed, submitted, complete, nft_added, each at most once and in that order."""
    stage: dict[str, int] = {}
    for item in items:
        record_id = item.event.data["provenance"].get("id", item.group)
        assert item.group == record_id
        assert ROYAL_STAGE[item.event.type] > stage.get(record_id, -1)
        stage[record_id] = ROYAL_STAGE[item.event.type]


def test_tectra_records_signatures_and_roots_are_true():
    stream = events("tectra", seed=7)
    items = take(stream, 1500)
    check_tectra_order(items)
    leaves, blocks, seen_sha = {}, [], set()
    for item in items:
        event, data = item.event, item.event.data
        assert set(data) == set(SEED[event.type]["data"])
        if event.type == CONTENT_SIGNED:
            message = signing_message(data["sha256"], data["perceptual_hash"], event.timestamp, stream.signer.key_id)
            assert verify_signature(stream.signer.public_key_hex, message, bytes.fromhex(data["signature_hex"]))
            content = content_of(7, data["record_id"], data["sha256"])
            assert data["sha256"] not in seen_sha and data["blockchain_status"] == "pending"
            seen_sha.add(data["sha256"])
            leaves[data["record_id"]] = ("0x" + data["sha256"], "0x" + blake3.blake3(content).hexdigest(),
                                         "0x" + keccak(bytes.fromhex(data["signature_hex"])).hex())
        elif event.type == BATCH_ANCHORED:
            tree = MerkleTree.of([leaves[r] for r in data["record_ids"]])
            assert data["merkle_root"] == tree.root_hex and data["leaf_count"] == len(data["record_ids"])
            assert HASH.fullmatch(data["tx_hash"]) and data["network"] == "anvil"
            blocks.append(data["block_number"])
        else:
            assert (data["authentic"], data["confidence"]) == score(data["checks"])
            assert data["authentic"] and data["checks"]["perceptual_hash"]["passed"]
            assert data["signer"] == {"org_name": stream.signer.identity.org_name,
                                      "org_type": stream.signer.identity.org_type}
    assert len(seen_sha) > 500 and len(blocks) > 20
    assert blocks == sorted(set(blocks))


def test_tagged_pictures_keep_their_pooled_phash(tmp_path: Path):
    pool = picture_pool(11)
    assert {p.origin_type for p in pool} == {"camera_image", "digital_image"}
    assert {p.mime for p in pool} == {"image/jpeg", "image/png"}
    for index, picture in enumerate(pool):
        first, second = picture.content("rec-a"), picture.content("rec-b")
        assert first != second
        for tag, content in (("a", first), ("b", second)):
            path = tmp_path / f"{index}{tag}.{picture.ext}"
            path.write_bytes(content)
            looks = fingerprint(path)
            assert (looks.perceptual_hash, looks.origin_type) == (picture.perceptual_hash, picture.origin_type)


def test_royal_registrations_are_consistent_on_one_synthetic_chain():
    items = take(events("royal", seed=3, context=sample_context), 2000)
    check_royal_order(items)
    submitted, anchors, mints, tokens = {}, {}, {}, []
    for item in items:
        data = item.event.data
        assert data["context"] == sample_context(item.group)
        assert re.fullmatch(r"[0-9a-f]{64}", data["provenance"]["content_hash"])
        if item.event.type == SUBMITTED:
            submitted[item.group] = data["transaction"]["transaction_hash"]
        if item.event.type not in (COMPLETE, NFT_ADDED):
            continue
        tx = data["transaction"]
        assert HASH.fullmatch(tx["transaction_hash"]) and HASH.fullmatch(tx["block_hash"])
        assert tx["chain_id"] == CHAIN_ID and tx["removed"] is False
        if item.event.type == COMPLETE:
            assert submitted.get(item.group, tx["transaction_hash"]) == tx["transaction_hash"]
            anchors.setdefault(tx["transaction_hash"], set()).add(json.dumps(tx, sort_keys=True))
        else:
            nft = data["provenance"]["nft"]
            assert nft["address"] == NFT_ADDRESS
            tokens.append(int(nft["id"]))
            mints.setdefault(tx["transaction_hash"], []).append(tx["log_index"])
    assert all(len(receipts) == 1 for receipts in anchors.values())  # one receipt for a whole batch
    assert all(len(logs) == len(set(logs)) > 1 for logs in list(mints.values())[:-1])
    assert tokens == sorted(set(tokens)) and len(tokens) == 500


def test_royal_mint_follows_the_anchor_of_each_registration():
    anchored = {}
    for item in take(events("royal", seed=5), 800):
        tx = item.event.data.get("transaction", {})
        if item.event.type == COMPLETE:
            anchored[item.group] = tx["block_number"]
        elif item.event.type == NFT_ADDED:
            assert tx["block_number"] > anchored[item.group]


@pytest.mark.parametrize("dialect, mix", [
    ("tectra", {CONTENT_SIGNED: 0.6, BATCH_ANCHORED: 0.1, CONTENT_VERIFIED: 0.3}),
    ("tectra", {BATCH_ANCHORED: 0.2, CONTENT_VERIFIED: 0.8}),
    ("tectra", {CONTENT_SIGNED: 0.9, BATCH_ANCHORED: 0.005, CONTENT_VERIFIED: 0.095}),
    ("royal", {HASHED: 0.1, SUBMITTED: 0.2, COMPLETE: 0.3, NFT_ADDED: 0.4}),
    ("royal", {HASHED: 0.5, NFT_ADDED: 0.5}),
    ("royal", {COMPLETE: 1}),
])
def test_the_mix_is_met_within_a_few_percent_in_causal_order(dialect: str, mix: dict):
    items = take(events(dialect, mix, seed=1), 10_000)
    (check_tectra_order if dialect == "tectra" else check_royal_order)(items)
    counts, total = Counter(item.event.type for item in items), sum(mix.values())
    for event_type in DIALECT_EVENTS[dialect]:
        assert abs(counts[event_type] / len(items) - mix.get(event_type, 0) / total) < 0.02, event_type


def test_the_default_mix_is_the_lifecycle():
    assert default_mix("tectra", 16) == {CONTENT_SIGNED: 16, BATCH_ANCHORED: 1, CONTENT_VERIFIED: 16}
    counts = Counter(item.event.type for item in take(events("royal"), 400))
    assert set(counts.values()) == {100}


def test_a_seed_repeats_the_records_but_not_the_event_ids():
    first, second = (take(events("tectra", {CONTENT_SIGNED: 1}, seed=9), 20) for _ in range(2))
    assert [i.event.data["sha256"] for i in first] == [i.event.data["sha256"] for i in second]
    assert {i.event.id for i in first}.isdisjoint(i.event.id for i in second)


def test_parse_mix_reads_full_and_short_names():
    assert parse_mix("content.signed=0.6, batch.anchored=0.1,verified=0.3", "tectra") == {
        CONTENT_SIGNED: 0.6, BATCH_ANCHORED: 0.1, CONTENT_VERIFIED: 0.3}
    assert parse_mix("hashed=1,provenance.registration.complete=2", "royal") == {HASHED: 1.0, COMPLETE: 2.0}


@pytest.mark.parametrize("text, dialect, words", [
    ("content.signed=0.6,content.hashed=1", "tectra", ["content.hashed=1", "not a tectra event"]),
    ("hashed=1", "tectra", ["hashed=1", "not a tectra event"]),
    ("content.signed=lots", "tectra", ["content.signed=lots", "not a number"]),
    ("content.signed=nan", "tectra", ["content.signed=nan", "not a finite number"]),
    ("content.signed=-0.5", "tectra", ["content.signed=-0.5", "negative"]),
    ("content.signed=0,batch.anchored=0", "tectra", ["content.signed=0", "no event has a positive weight"]),
    ("", "royal", ["no event has a positive weight"]),
    ("complete", "royal", ["'complete'", "EVENT=WEIGHT"]),
    ("complete=1,provenance.registration.complete=2", "royal", ["given twice"]),
    ("complete=1", "svix", ["unknown dialect 'svix'"]),
])
def test_parse_mix_refuses_in_one_line_naming_the_item(text: str, dialect: str, words: list[str]):
    with pytest.raises(ValueError) as caught:
        parse_mix(text, dialect)
    message = str(caught.value)
    assert "\n" not in message and all(word in message for word in words), message


@pytest.mark.parametrize("args, kwargs, words", [
    (("svix",), {}, ["unknown dialect 'svix'"]),
    (("royal", {"content.signed": 1}), {}, ["content.signed=1", "not a royal event"]),
    (("tectra", {CONTENT_SIGNED: -1}), {}, ["negative"]),
    (("tectra",), {"batch_size": 0}, ["batch_size", "got 0"]),
])
def test_events_refuses_bad_arguments_at_once(args: tuple, kwargs: dict, words: list[str]):
    with pytest.raises(ValueError) as caught:
        events(*args, **kwargs)
    assert all(word in str(caught.value) for word in words)
