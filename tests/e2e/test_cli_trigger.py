"""`provsim trigger` and `provsim replay` as a receiver team uses them: scenarios in order, overrides, replays."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from e2e_support import listening, make_images, provsim
from royal_receiver import RoyalReceiver
from seed_receiver import SeedReceiver
from shapes import schema_errors

from typer.testing import CliRunner

from emitter.endpoint import new_secret
from pipeline.cli import app
from pipeline.scenarios import SCENARIOS

TECTRA_SECRET = "whsec_" + "dHJpZ2dlci10ZXN0LXNlY3JldC10aGlydHktdHdvLWI="


def cli(*args: str, code: int = 0) -> str:
    """Run a provsim command in this process (imports paid once); its output, after checking the exit code."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"provsim {' '.join(args)} exited {result.exit_code}: {result.output}"
    return result.output


def receiver_for(dialect: str, secret: str):
    """A verifying loopback receiver of the dialect: the seed's logic for Tectra, svix and standardwebhooks for Royal."""
    return SeedReceiver(secret) if dialect == "tectra" else RoyalReceiver(secret)


EXPECTED = {
    "tectra.sign-anchor-verify": ["content.signed", "batch.anchored", "content.verified"],
    "tectra.verify-tampered": ["content.signed", "batch.anchored", "content.verified"],
    "royal.api-registration": ["provenance.registration.hashed", "provenance.registration.submitted",
                               "provenance.registration.complete", "provenance.registration.nft_added"],
    "royal.manual-registration": ["provenance.registration.complete", "provenance.registration.nft_added"],
    "royal.reorg": ["provenance.registration.complete"] * 3,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_scenario_arrives_in_order_and_verified(name: str):
    dialect = SCENARIOS[name].dialect
    secret = TECTRA_SECRET if dialect == "tectra" else new_secret()
    with receiver_for(dialect, secret) as rx:
        cli("trigger", "--scenario", name, "--endpoint", rx.url, "--secret", secret)
        got = list(rx.deliveries)
    assert all(d.verified for d in got)
    bodies = [d.event for d in got]
    assert [b.get("event") or b.get("type") for b in bodies] == EXPECTED[name]
    assert all(schema_errors(b) == [] for b in bodies)
    if name.startswith("tectra"):
        signed, anchored, verified = (b["data"] for b in bodies)
        assert anchored["record_ids"] == [signed["record_id"]]
        assert verified["authentic"] is (name == "tectra.sign-anchor-verify")
    if name == "royal.reorg":
        assert [b["data"]["transaction"]["removed"] for b in bodies] == [False, True, False]
        assert len({b["data"]["provenance"]["id"] for b in bodies}) == 1
    if name == "royal.api-registration":
        assert len({b["data"]["provenance"]["content_hash"] for b in bodies}) == 1
        assert all(b["data"]["context"] == bodies[0]["data"]["context"] for b in bodies)


def test_one_event_with_overrides_and_one_from_a_real_record(tmp_path: Path):
    data = tmp_path / "state"
    [image] = make_images(tmp_path / "media", 1)
    report = json.loads(cli("run", str(image), "--data-dir", str(data), "--json", code=0))
    record = report["registered"][0]
    with SeedReceiver(TECTRA_SECRET) as rx:
        cli("trigger", "content.signed", "--set", "data.origin_type=screenshot", "--set",
            'data.signer={"org_name": "X", "org_type": "y", "key_name": "z"}',
            "--endpoint", rx.url, "--secret", TECTRA_SECRET)
        cli("trigger", "content.signed", "--from-db", "--record-id", record["record_id"],
            "--data-dir", str(data), "--endpoint", rx.url, "--secret", TECTRA_SECRET)
        missing = provsim("trigger", "content.verified", "--from-db", "--record-id", record["record_id"],
                          "--data-dir", str(data), "--endpoint", rx.url, "--secret", TECTRA_SECRET, check=False)
        overridden, real = (d.event["data"] for d in rx.events())
    assert overridden["origin_type"] == "screenshot" and overridden["signer"]["org_name"] == "X"
    assert real["record_id"] == record["record_id"] and real["sha256"] == record["sha256"]
    assert missing.returncode == 2 and "use provsim verify FILE" in missing.stderr


def _now() -> str:
    """The current UTC time as ISO 8601."""
    return datetime.now(timezone.utc).isoformat()


def test_replay_resends_exactly_the_window_in_order_with_the_same_ids(tmp_path: Path):
    data = tmp_path / "state"
    media = make_images(tmp_path / "media", 4, seed=3)
    with SeedReceiver(TECTRA_SECRET) as rx:
        common = ["--endpoint", rx.url, "--secret", TECTRA_SECRET, "--data-dir", str(data), "--batch-size", "2"]
        cli("run", *map(str, media[:2]), *common)
        time.sleep(0.05)
        middle = _now()
        time.sleep(0.05)
        cli("run", *map(str, media[2:]), *common)
        first_pass = [(d.headers["X-Tectra-Delivery"], d.body) for d in rx.events()]
        planned = cli("replay", "--since", middle, "--data-dir", str(data), "--dry-run")
        assert len(rx.events()) == len(first_pass), "a dry run sends nothing"
        cli("replay", "--since", middle, "--data-dir", str(data))
        again = [(d.headers["X-Tectra-Delivery"], d.body) for d in rx.events()][len(first_pass):]
        only_anchors = cli("replay", "--since", "2000-01-01T00:00:00Z", "--event", "batch.anchored",
                           "--data-dir", str(data))
        anchors = [d.event["event"] for d in rx.events()][len(first_pass) + len(again):]
    assert len(first_pass) == 6  # 4 content.signed and 2 batch.anchored
    assert again == first_pass[3:], "the second run's events, in their order, same delivery ids and bodies"
    assert "3 to replay" in planned
    assert anchors == ["batch.anchored", "batch.anchored"] and "replayed 2: 2 delivered" in only_anchors


@pytest.mark.parametrize("dialect", ["tectra", "royal"])
def test_every_scenario_of_a_dialect_arrives_at_provsim_listen_in_order_and_verified(tmp_path: Path, dialect: str):
    secret = new_secret()
    dump = tmp_path / "got.jsonl"
    names = [name for name, scenario in SCENARIOS.items() if scenario.dialect == dialect]
    with listening(secret, dialect, dump) as url:
        for name in names:
            cli("trigger", "--scenario", name, "--endpoint", url, "--secret", secret)
    got = [json.loads(line) for line in dump.read_text().splitlines()]
    assert all(line["verified"] and line["status"] == 200 for line in got)
    assert [line["event_type"] for line in got] == [t for name in names for t in EXPECTED[name]]
