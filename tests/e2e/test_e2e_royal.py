"""Royal-dialect endpoints: the seed's payload shapes, standard events for manual registrations, reorgs."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from e2e_support import make_images, provsim
from royal_receiver import RoyalReceiver
from seed_receiver import SeedReceiver
from shapes import schema_errors

from emitter.endpoint import Endpoint, new_secret
from pipeline.analyze import analyze_file
from pipeline.connect import ChainSpec
from pipeline.lifecycle import ChainWorker
from pipeline.nodes import reorg, start_node
from pipeline.runner import deliver_outbox, run_pipeline
from pipeline.service import Service
from pipeline.settings import Settings

TECTRA_SECRET = "whsec_" + "cm95YWwtdGVzdC10ZWN0cmEtc2VjcmV0LTMyLWJ5dGVzIQ=="
TRANSACTION_KEYS = {"transaction_hash", "block_hash", "block_number", "chain_id", "log_index",
                    "transaction_index", "removed"}


def check_complete(data: dict, context: dict | None) -> None:
    """The seed's provenance.registration.complete shape, key for key and type for type."""
    expected = {"provenance", "transaction"} | ({"context"} if context is not None else set())
    assert set(data) == expected
    if context is not None:
        assert data["context"] == context
    prov = data["provenance"]
    assert set(prov) >= {"content_hash", "id", "originator", "registrar"}
    assert len(prov["content_hash"]) == 64 and isinstance(prov["id"], str)
    for party in (prov["originator"], prov["registrar"]):
        assert set(party) == {"number", "username"} and party["number"].isdigit()
    tx = data["transaction"]
    assert set(tx) == TRANSACTION_KEYS
    assert all(isinstance(tx[k], int) and not isinstance(tx[k], bool)
               for k in ("block_number", "chain_id", "log_index", "transaction_index"))
    assert isinstance(tx["removed"], bool) and tx["transaction_hash"].startswith("0x")


def test_manual_registrations_send_complete_and_nft_added_with_the_context(tmp_path: Path):
    media = tmp_path / "media"
    make_images(media, 3, seed=31)
    secret = new_secret()
    context = {"user_id": "12345", "transaction_ref": "tx_abc123", "nested": {"a": [1, 2]}}
    with RoyalReceiver(secret) as royal, SeedReceiver(TECTRA_SECRET) as tectra:
        report = json.loads(provsim(
            "run", str(media), "--endpoint", royal.url, "--secret", secret, "--dialect", "royal",
            "--endpoint", tectra.url, "--secret", TECTRA_SECRET, "--dialect", "tectra",
            "--context", json.dumps(context), "--data-dir", str(tmp_path / "state"), "--json").stdout)
        types = sorted({d.event["type"] for d in royal.deliveries})
        complete = royal.events("provenance.registration.complete")
        nft = royal.events("provenance.registration.nft_added")
        assert all(d.verified for d in royal.deliveries), "svix and standardwebhooks accept every delivery"
        assert all(schema_errors(d.event) == [] for d in royal.deliveries + tectra.deliveries)
        assert {d.event["event"] for d in tectra.events()} == {"content.signed", "batch.anchored"}
    assert report["exit_code"] == 0
    assert types == ["provenance.registration.complete", "provenance.registration.nft_added"], \
        "manual registrations get the standard events only"
    ids = {r["record_id"] for r in report["registered"]}
    assert {d.event["data"]["provenance"]["id"] for d in complete} == ids
    for d in complete:
        check_complete(d.event["data"], context)
        assert d.event["data"]["transaction"]["removed"] is False
        assert d.headers["webhook-id"] == d.headers["svix-id"]
    tokens = set()
    for d in nft:
        data = d.event["data"]
        check_complete({k: v for k, v in data.items()}, context)
        assert set(data["provenance"]["nft"]) == {"address", "id"}
        assert data["provenance"]["nft"]["id"].isdigit()
        tokens.add(data["provenance"]["nft"]["id"])
    assert len(tokens) == 3


def test_extended_events_and_a_reorg_on_anvil(tmp_path: Path):
    media = tmp_path / "media"
    paths = make_images(media, 2, seed=41)
    secret = new_secret()
    with start_node("anvil", chain_id=31337) as node, RoyalReceiver(secret) as royal:
        spec = ChainSpec(kind="anvil", rpc_url=node.url, private_key=node.funded_key)
        service = Service(Settings(data_dir=tmp_path / "state", chain=spec, batch_size=2, mint_nfts=False))
        try:
            service.add_transient_endpoints([Endpoint.new(royal.url, secret=secret, dialect="royal",
                                                          persistent=False)])
            analyses = [(analyze_file(str(p), 1 << 30, 1 << 30), str(p), p.name) for p in paths]
            records = service.register_many(analyses, context={"k": "v"}, extended=True)
            service.close_batch([rec.id for rec, _ in records])
            asyncio.run(run_pipeline(service, []))
            reorg(node, 1)
            done = asyncio.Event()
            done.set()
            asyncio.run(ChainWorker(service, mint=False).run(done))
            asyncio.run(deliver_outbox(service))
        finally:
            service.close()
        sequence = [(d.event["type"].rsplit(".", 1)[1], d.event["data"].get("transaction", {}).get("removed"))
                    for d in royal.events() if d.event["data"]["provenance"]["content_hash"] == records[0][0].blake3]
        assert all(d.verified and schema_errors(d.event) == [] for d in royal.deliveries)
    assert sequence == [("hashed", None), ("submitted", None), ("complete", False), ("complete", True),
                        ("complete", False)]
