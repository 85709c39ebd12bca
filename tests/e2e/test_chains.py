"""The pipeline on every chain: embedded, anvil and ganache; reorgs and a node restart on anvil."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from e2e_support import make_images, provsim
from seed_receiver import SeedReceiver
from shapes import shape_errors

from emitter.endpoint import Endpoint
from pipeline.connect import LOCAL_CHAIN_IDS, ChainSpec
from pipeline.lifecycle import ChainWorker
from pipeline.nodes import reorg, start_node
from pipeline.runner import run_pipeline
from pipeline.service import Service
from pipeline.settings import Settings

SECRET = "whsec_" + "Y2hhaW5zLXRlc3Qtc2VjcmV0LXRoaXJ0eS10d28tYnl0ZXM="


@pytest.mark.parametrize("kind", ["embedded", "anvil", "ganache"])
def test_run_anchors_confirms_and_verifies_on_each_chain(tmp_path: Path, kind: str):
    media = tmp_path / "media"
    make_images(media, 6, seed=21)
    data = tmp_path / "state"
    with SeedReceiver(SECRET) as rx:
        if kind == "embedded":
            chain_args = ["--chain", "embedded"]
            node = None
        else:
            node = start_node(kind, chain_id=LOCAL_CHAIN_IDS[kind])
            chain_args = ["--rpc-url", node.url, "--private-key", node.funded_key]
        try:
            report = json.loads(provsim("run", str(media), *chain_args, "--batch-size", "4", "--endpoint", rx.url,
                                        "--secret", SECRET, "--data-dir", str(data), "--json").stdout)
            result = json.loads(provsim("verify", str(media / "img_0002.jpg"), *(chain_args if node else []),
                                        "--data-dir", str(data), "--json").stdout)
            shown = [json.loads(provsim("record", r["record_id"], "--data-dir", str(data), "--json").stdout)
                     for r in report["registered"]]
        finally:
            if node:
                node.stop()
        anchored = rx.events("batch.anchored")
    assert report["exit_code"] == 0 and len(report["registered"]) == 6
    assert sorted(b["leaf_count"] for b in report["batches"]) == [2, 4]
    assert len(anchored) == 2 and all(shape_errors(d.event) == [] for d in anchored)
    network = {"embedded": "embedded", "anvil": "anvil", "ganache": "ganache"}[kind]
    assert {d.event["data"]["network"] for d in anchored} == {network}
    assert result["checks"]["blockchain"]["passed"] is True, result["checks"]["blockchain"]
    assert result["confidence"] == 0.75
    # One NFT per registration, minted after its anchor, with the receipt fields Royal reports.
    tokens = sorted(int(s["nft"]["token_id"]) for s in shown)
    assert tokens == list(range(1, 7))
    for s in shown:
        assert s["blockchain_status"] == "anchored" and s["anchor"]["block_number"] >= 1
        assert s["nft"]["status"] == "confirmed" and s["nft"]["transaction_hash"].startswith("0x")
        assert s["nft"]["block_number"] > s["anchor"]["block_number"]


def _service(tmp_path: Path, node, **settings) -> Service:
    spec = ChainSpec(kind="anvil", rpc_url=node.url, private_key=node.funded_key)
    return Service(Settings(data_dir=tmp_path, chain=spec, batch_size=4, batch_interval=30.0, **settings))


def test_reorg_removes_the_anchor_and_it_is_anchored_again_once(tmp_path: Path):
    media = tmp_path / "media"
    make_images(media, 4, seed=5)
    with start_node("anvil", chain_id=31337) as node, SeedReceiver(SECRET) as rx:
        service = _service(tmp_path / "state", node)
        try:
            service.add_transient_endpoints([Endpoint.new(rx.url, secret=SECRET, persistent=False)])
            report = asyncio.run(run_pipeline(service, [str(media)]))
            [batch] = report.batches
            first_block = batch.block_hash
            reorg(node, 2)
            worker = ChainWorker(service)
            done = asyncio.Event()
            done.set()
            asyncio.run(worker.run(done))
            assert worker.reorgs >= 1
            txs = service.store.txs(kind="anchor", batch_id=batch.id)
            statuses = [t.status for t in txs]
            assert statuses.count("confirmed") == 1 and "removed" in statuses
            after = service.store.batch(batch.id)
            assert after.status == "anchored" and after.block_hash != first_block
            root = bytes.fromhex(batch.merkle_root[2:])
            assert service.chain.anchor_of(root) is not None
            assert service.chain.block_hash(after.block_number) == after.block_hash
            assert all(r.blockchain_status == "anchored" for r in service.store.batch_records(batch.id))
            from pipeline.runner import deliver_outbox

            asyncio.run(deliver_outbox(service))
        finally:
            service.close()
        anchored = [d.event["data"] for d in rx.events("batch.anchored")]
    assert len(anchored) == 2, "announced once per canonical inclusion"
    assert anchored[0]["batch_id"] == anchored[1]["batch_id"] == batch.id


def test_node_killed_mid_run_then_restarted_the_run_completes(tmp_path: Path):
    media = tmp_path / "media"
    make_images(media, 24, seed=9)
    notes: list[str] = []
    with start_node("anvil", chain_id=31337, state_path=tmp_path / "anvil-state.json") as node:
        service = _service(tmp_path / "state", node)
        try:
            _ = service.chain
            time.sleep(1.5)  # anvil dumps its state every second: let it hold the contracts

            async def scenario():
                run = asyncio.create_task(run_pipeline(service, [str(media)], on_note=notes.append))
                while not service.store.txs(kind="anchor"):
                    await asyncio.sleep(0.02)
                node.kill()
                while not any("waiting for the chain" in n for n in notes):
                    await asyncio.sleep(0.05)
                await asyncio.to_thread(node.restart)
                return await asyncio.wait_for(run, 120)

            report = asyncio.run(scenario())
            assert len(report.registered) == 24
            batches = service.store.batches()
            assert len(batches) == 6 and all(b.status == "anchored" for b in batches)
            for b in batches:
                assert service.chain.anchor_of(bytes.fromhex(b.merkle_root[2:])) is not None
        finally:
            service.close()
    waiting = [n for n in notes if "waiting for the chain" in n]
    assert waiting and all("\n" not in n for n in waiting)
    assert any("answering again" in n for n in notes)


def test_confirmations_wait_for_k_blocks_on_the_embedded_chain(tmp_path: Path):
    media = tmp_path / "media"
    make_images(media, 3, seed=13)
    service = Service(Settings(data_dir=tmp_path / "state", batch_size=3, confirmations=3))
    try:
        report = asyncio.run(run_pipeline(service, [str(media)]))
        [batch] = report.batches
        head = service.chain.head()
        assert head - batch.block_number + 1 >= 3, "announced only once 3 blocks hold the anchor"
        assert all(r.blockchain_status == "anchored" for r in service.store.batch_records(batch.id))
    finally:
        service.close()
    reopened = Service(Settings(data_dir=tmp_path / "state"))
    try:
        assert reopened.chain.head() == head, "the empty blocks mined while waiting are journalled too"
        assert reopened.chain.block_hash(batch.block_number) == batch.block_hash
    finally:
        reopened.close()


def test_a_missing_node_binary_is_one_line_naming_the_make_target(tmp_path: Path):
    media = tmp_path / "media"
    make_images(media, 1)
    proc = provsim("run", str(media), "--chain", "anvil", "--data-dir", str(tmp_path / "state"), check=False,
                   env_extra={"PROVSIM_ANVIL": str(tmp_path / "no-such-anvil")})
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "make npm" in lines[0] and "Traceback" not in proc.stderr


def test_chain_up_keeps_a_node_running_until_ctrl_c(tmp_path: Path):
    import signal
    import socket
    import subprocess
    import sys

    from e2e_support import ROOT
    from pipeline.nodes import rpc

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "chain", "up", "--kind", "anvil", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        assert int(rpc(f"http://127.0.0.1:{port}", "eth_chainId"), 16) == 31337
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the node stops with the command"
