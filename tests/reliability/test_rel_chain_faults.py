"""Chain faults during delivery, on anvil, with receivers that fail their first answers: a node crash, a reorg.

A run is kept going (so that the fault lands mid-run) by one URL source whose download trickles until
the test releases it; both receivers answer 503 to the first tries of every delivery throughout.
"""
from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rel_support import ROYAL_SECRET, TECTRA_SECRET, Provsim, Receiver, deliveries, make_images, provsim

from pipeline.connect import ChainSpec
from pipeline.nodes import reorg, rpc, start_node
from pipeline.service import Service
from pipeline.settings import Settings


class Gate:
    """Serves one file over loopback HTTP a byte at a time until released, then the rest at once."""

    def __init__(self, body: bytes):
        """Hold `body` back until released."""
        self.released = threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            """Trickles the body until the gate opens."""
            def do_GET(self):  # noqa: N802 (http.server naming)
                """Send the headers, a byte a second while the gate is closed, then the rest."""
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                sent = 0
                while not gate.released.wait(1.0) and sent < len(body) - 1:
                    self.wfile.write(body[sent:sent + 1])
                    self.wfile.flush()
                    sent += 1
                self.wfile.write(body[sent:])

            def log_message(self, *args):
                """Keep quiet."""
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/late.jpg"

    def __enter__(self) -> Gate:
        """Serve."""
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        """Release any download still waiting and stop serving."""
        self.released.set()
        self._server.shutdown()
        self._server.server_close()


def wait_for(condition, run: Provsim, what: str, timeout: float = 120) -> None:
    """Poll until `condition()` holds; fail naming `what` if the run ends first or it takes too long."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert run.proc.poll() is None, f"the run ended before {what}: {''.join(run.err)[-2000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)


def noted(run: Provsim, words: str) -> bool:
    """Whether the run printed a line containing `words` on standard error."""
    return any(words in line for line in list(run.err))


def audit_chain(data: Path, node) -> tuple[dict, dict]:
    """Every batch anchored once on the canonical chain by its stored transaction, one NFT per record."""
    spec = ChainSpec(kind="anvil", rpc_url=node.url, private_key=node.funded_key)
    service = Service(Settings(data_dir=data, chain=spec))
    try:
        chain, store = service.chain, service.store
        records = {r.id: r for r in store.records()}
        batches = {b.id: b for b in store.batches()}
        for b in batches.values():
            confirmed = [t for t in store.txs(kind="anchor", batch_id=b.id) if t.status == "confirmed"]
            assert b.status == "anchored" and len(confirmed) == 1, b
            assert chain.find_anchor(bytes.fromhex(b.merkle_root[2:])).transaction_hash == b.tx_hash
            assert chain.block_hash(b.block_number) == b.block_hash, "anchored in a canonical block"
        assert all(r.blockchain_status == "anchored" for r in records.values())
        tokens, token_id = defaultdict(int), 1
        while (token := chain.nft_token(token_id)) is not None:
            tokens[token[1]] += 1
            token_id += 1
        wrong = {r.id: (tokens["0x" + r.blake3], store.nft(r.id)) for r in records.values()
                 if tokens["0x" + r.blake3] != 1}
        assert not wrong, f"tokens on chain and the stored NFT of records without exactly one: {wrong}"
    finally:
        service.close()
    return records, batches


def audit_receivers(records: dict, batches: dict, tx: Receiver, rx: Receiver) -> tuple[dict, dict]:
    """Every event about these records arrived, one id per event; returns Royal's completes and Tectra's anchors."""
    batches = {b.id: b for b in batches.values() if any(r.batch_id == b.id for r in records.values())}
    signed = defaultdict(set)
    for r in tx.accepted("content.signed"):
        signed[r.event["data"]["record_id"]].add(r.delivery_id)
    assert set(signed) == set(records) and all(len(ids) == 1 for ids in signed.values())
    anchored = defaultdict(set)
    for r in tx.accepted("batch.anchored"):
        d = r.event["data"]
        anchored[(d["batch_id"], d["tx_hash"], d["block_number"])].add(r.delivery_id)
    assert all(len(ids) == 1 for ids in anchored.values()), "one delivery id per announcement"
    assert {(b.id, b.tx_hash, b.block_number) for b in batches.values()} <= set(anchored), "the final anchors"
    complete, minted = defaultdict(list), defaultdict(set)
    for r in rx.accepted("provenance.registration.complete"):
        complete[r.event["data"]["provenance"]["id"]].append(r.event["data"]["transaction"])
    for r in rx.accepted("provenance.registration.nft_added"):
        minted[r.event["data"]["provenance"]["id"]].add(r.delivery_id)
    for rec in records.values():
        final = batches[rec.batch_id].block_hash
        assert any(t["block_hash"] == final and not t["removed"] for t in complete[rec.id]), rec.id
        assert all(t["block_hash"] != final for t in complete[rec.id] if t["removed"])
        assert minted[rec.id], f"nft_added for {rec.id}"
    return complete, anchored


def block_hash(node, number: int) -> str:
    """The hash of the node's canonical block at this height."""
    return rpc(node.url, "eth_getBlockByNumber", [hex(number), False])["hash"]


def reorg_away(node, number: int) -> None:
    """Replace the blocks from `number` up with new ones (again if the run mined more in between)."""
    before = block_hash(node, number)
    while block_hash(node, number) == before:
        reorg(node, int(rpc(node.url, "eth_blockNumber"), 16) - number + 1)


def pipeline_args(data: Path, node, tx: Receiver, rx: Receiver) -> list[str]:
    """A run on the node, delivering to both receivers, with retries in milliseconds."""
    return ["--endpoint", tx.url, "--secret", TECTRA_SECRET, "--endpoint", rx.url, "--secret", ROYAL_SECRET,
            "--dialect", "tectra", "--dialect", "royal", "--batch-size", "4", "--time-scale", "0.001",
            "--rpc-url", node.url, "--private-key", node.funded_key, "--data-dir", str(data), "--allow-private", "--json"]


def late_image(tmp_path: Path) -> bytes:
    """The bytes of an image no other source has."""
    make_images(tmp_path / "late", 1, seed=99)
    return (tmp_path / "late" / "img_0000.jpg").read_bytes()


def test_node_killed_and_restarted_mid_run_with_failing_receivers_anchors_once_and_delivers_all(tmp_path: Path):
    """anvil SIGKILLed after the first anchor, restarted from its saved state: all anchored once, all delivered."""
    media, warm, data, state = tmp_path / "media", tmp_path / "warm", tmp_path / "data", tmp_path / "anvil.json"
    make_images(media, 20, seed=61)
    make_images(warm, 1, seed=62)
    with start_node("anvil", chain_id=31337, state_path=state) as node, \
            Receiver("tectra", TECTRA_SECRET, fail_first=1) as tx, Receiver("royal", ROYAL_SECRET, fail_first=2) as rx, \
            Gate(late_image(tmp_path)) as gate:
        # Deploy the contracts first and let anvil save them (it dumps its state every second).
        assert provsim("run", str(warm), "--rpc-url", node.url, "--private-key", node.funded_key,
                       "--data-dir", str(data)).returncode == 0
        deployed = time.time()
        deadline = time.monotonic() + 30
        while not (state.exists() and state.stat().st_mtime > deployed + 0.1) and time.monotonic() < deadline:
            time.sleep(0.1)
        with Provsim("run", str(media), gate.url, *pipeline_args(data, node, tx, rx)) as run:
            wait_for(lambda: tx.accepted("batch.anchored"), run, "first batch.anchored")
            node.kill()
            wait_for(lambda: noted(run, "waiting for the chain"), run, "note of the outage")
            gate.released.set()  # the last item is registered while the chain is down
            node.restart()
            done = run.finish(240)
        assert json.loads(done.stdout)["exit_code"] == 0, done.stdout + done.stderr
        assert noted(run, "chain answering again")
        records, batches = audit_chain(data, node)
    assert len(records) == 22
    assert all(row["status"] == "delivered" for row in deliveries(data))
    audit_receivers({k: r for k, r in records.items() if not r.source.startswith(str(warm))}, batches, tx, rx)


def test_reorg_mid_run_with_failing_receivers_announces_removal_and_anchors_each_root_once(tmp_path: Path):
    """The first anchor's block reorged away mid-run: removed: true to Royal, anchored again once, all delivered."""
    media, data = tmp_path / "media", tmp_path / "data"
    make_images(media, 12, seed=71)
    with start_node("anvil", chain_id=31337) as node, \
            Receiver("tectra", TECTRA_SECRET, fail_first=1) as tx, Receiver("royal", ROYAL_SECRET, fail_first=2) as rx, \
            Gate(late_image(tmp_path)) as gate:
        with Provsim("run", str(media), gate.url, *pipeline_args(data, node, tx, rx)) as run:
            wait_for(lambda: tx.accepted("batch.anchored"), run, "first batch.anchored")
            first = tx.accepted("batch.anchored")[0].event["data"]
            reorg_away(node, first["block_number"])
            wait_for(lambda: noted(run, "reorg:"), run, "note of the reorg")
            gate.released.set()
            done = run.finish(240)
        assert json.loads(done.stdout)["exit_code"] == 0, done.stdout + done.stderr
        records, batches = audit_chain(data, node)
    assert len(records) == 13
    assert all(row["status"] == "delivered" for row in deliveries(data))
    complete, anchored = audit_receivers(records, batches, tx, rx)
    assert len([key for key in anchored if key[0] == first["batch_id"]]) >= 2, "announced once per inclusion"
    for rec in (r for r in records.values() if r.batch_id == first["batch_id"]):
        assert any(t["removed"] for t in complete[rec.id]), f"removed: true for {rec.id}"
