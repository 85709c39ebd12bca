"""Crash soak: SIGKILL `provsim run` at seeded random points, restart it until it completes, audit what survived.

    python tools/soak.py                        # 500 items, 20 kills, prints a table
    python tools/soak.py --items 120 --kills 5 --json soak.json

Every restart is the same command on the same --data-dir. The receiver is `provsim listen` in a process
of its own, dumping every request it gets. When the run has completed, the audit checks the database
(PRAGMA integrity_check), the embedded chain (each batch root anchored once, by the stored transaction,
every record's proof accepted by the registry, one NFT per record) and the receiver's dump (every
event arrived, re-deliveries only under the delivery id it had). Exit status 0 when nothing was lost,
announced twice under another id, anchored twice or corrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "whsec_" + "c29hay10ZXN0LXNlY3JldC1vZi10aGlydHktdHdvLWJ5dGVz"
RUN_TIMEOUT = 300.0  # seconds one restarted run may take before the soak gives up on it
COLUMNS = ("runs", "kills", "items", "records", "batches", "deliveries", "received", "lost", "duplicated",
           "other_id", "chain_errors", "corrupted", "seconds")


def make_images(directory: Path, count: int, seed: int) -> None:
    """Distinct small JPEGs of random 8x8 blocks (distinct hashes and perceptual hashes)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        blocks = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(blocks).resize((96, 64), Image.NEAREST).save(directory / f"img_{i:04d}.jpg", quality=90)


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args: list[str], **kw) -> subprocess.Popen:
    """Start a provsim command in a session of its own (so its whole process group can be cleaned up)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, env=env,
                            start_new_session=True, **kw)


def reap(proc: subprocess.Popen) -> None:
    """Kill what is left of a process and its group (workers included), and wait for it."""
    for target in (lambda: os.killpg(proc.pid, signal.SIGKILL), lambda: proc.kill()):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()


def dump_lines(dump: Path) -> list[dict]:
    """The receiver's complete dump lines so far."""
    try:
        text = dump.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines()[: text.count("\n")]]


def start_listener(workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    """`provsim listen` on a free port with a dump file; returns the process, its URL and the dump."""
    port, dump = free_port(), workdir / "received.jsonl"
    log = open(workdir / "listen.log", "wb")
    proc = spawn(["listen", "--port", str(port), "--secret", SECRET, "--dump", str(dump)], stdout=log,
                 stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}/hooks", dump
        if proc.poll() is not None or time.monotonic() > deadline:
            reap(proc)
            raise RuntimeError(f"provsim listen did not come up: {(workdir / 'listen.log').read_text()[-500:]}")
        time.sleep(0.05)


def kill_plan(rng: random.Random, kills: int, expected: int) -> list[tuple[int | None, float]]:
    """Per kill: (received requests to wait for, then seconds to wait); about a quarter strike in start-up.

    A start-up kill (None) waits only its seconds after the restart, wherever the run has got to; the
    last kill is never one, and no target is in the last fifth, so every planned kill finds a run to kill.
    """
    early = min(max(0, kills - 1), sum(rng.random() < 0.25 for _ in range(kills)))
    plan: list[tuple[int | None, float]] = sorted(
        (rng.randrange(1, max(2, int(expected * 0.8))), rng.uniform(0.0, 0.25)) for _ in range(kills - early))
    for _ in range(early):
        plan.insert(rng.randrange(len(plan)), (None, rng.uniform(0.3, 3.0)))
    return plan


def one_run(cmd: list[str], dump: Path, kill: tuple[int | None, float] | None) -> tuple[bool, str]:
    """Start the run; with kill (lines, seconds), SIGKILL it that long after the dump has that many lines.

    Lines None: count the seconds from the start. Without a kill the run goes to its end. Returns
    whether it was killed, and its standard output.
    """
    with tempfile.TemporaryFile() as out:
        proc = spawn(cmd, stdout=out, stderr=subprocess.DEVNULL)
        killed = False
        try:
            deadline = time.monotonic() + RUN_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                if kill is not None and (kill[0] is None or len(dump_lines(dump)) >= kill[0]):
                    time.sleep(kill[1])
                    if proc.poll() is None:
                        os.kill(proc.pid, signal.SIGKILL)
                        killed = True
                    break
                time.sleep(0.02)
            if not killed:
                proc.wait(max(1.0, deadline - time.monotonic()))
        finally:
            reap(proc)
        out.seek(0)
        return killed, out.read().decode(errors="replace")


def soak(items: int, kills: int, seed: int, workdir: Path, batch_size: int = 8) -> dict:
    """Run the soak in `workdir` and return the audit with the run and kill counts."""
    started = time.monotonic()
    media, data = workdir / "media", workdir / "state"
    make_images(media, items, seed)
    expected = items + -(-items // batch_size)  # content.signed per item, batch.anchored per batch
    plan = kill_plan(random.Random(seed), kills, expected)
    listener, url, dump = start_listener(workdir)
    try:
        cmd = ["run", str(media), "--endpoint", url, "--secret", SECRET, "--batch-size", str(batch_size),
               "--batch-interval", "0.5", "--time-scale", "0.001", "--data-dir", str(data), "--json"]
        runs = done_kills = 0
        final: dict | None = None
        while final is None and runs < kills + 20:
            killed, output = one_run(cmd, dump, plan[done_kills] if done_kills < len(plan) else None)
            runs += 1
            done_kills += killed
            if not killed and output.strip():
                final = json.loads(output)
    finally:
        reap(listener)
    result = audit(data, dump_lines(dump), items)
    result.update(runs=runs, kills=done_kills, items=items, seconds=round(time.monotonic() - started, 1),
                  final_exit_code=None if final is None else final["exit_code"])
    return result


def audit(data: Path, received: list[dict], items: int) -> dict:
    """Check the database, the chain and what the receiver got; counts and the first problems found."""
    problems: list[str] = []
    db = data / "provsim.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        deliveries = conn.execute("SELECT id, status FROM wh_deliveries").fetchall()
    finally:
        conn.close()
    corrupted = 0 if integrity == ["ok"] else len(integrity)
    problems += [f"integrity: {line}" for line in integrity if line != "ok"]
    records, batches, chain_errors = audit_chain(data, problems)
    if len(records) != items:
        problems.append(f"{len(records)} records for {items} items")
    lost, duplicated, other_id = audit_deliveries(records, batches, deliveries, received, problems)
    bad_signatures = sum(1 for r in received if not r["verified"])
    corrupted += bad_signatures
    if bad_signatures:
        problems.append(f"{bad_signatures} requests failed signature verification")
    return {"records": len(records), "batches": len(batches), "deliveries": len(deliveries),
            "received": len(received), "lost": lost, "duplicated": duplicated, "other_id": other_id,
            "chain_errors": chain_errors, "corrupted": corrupted, "integrity": integrity, "problems": problems[:20]}


def audit_chain(data: Path, problems: list[str]) -> tuple[dict, dict, int]:
    """Each batch anchored once by its stored transaction, each proof accepted on chain, one NFT per record."""
    from pipeline.merkle import LEAF_TYPES, leaf_hash
    from pipeline.service import Service
    from pipeline.settings import Settings

    service = Service(Settings(data_dir=data))
    errors = 0
    try:
        chain, store = service.chain, service.store
        records = {r.id: r for r in store.records()}
        batches = {b.id: b for b in store.batches()}
        for batch in batches.values():
            root = bytes.fromhex(batch.merkle_root[2:])
            confirmed = [t for t in store.txs(kind="anchor", batch_id=batch.id) if t.status == "confirmed"]
            found = chain.find_anchor(root)
            if batch.status != "anchored" or len(confirmed) != 1 or found is None \
                    or found.transaction_hash != batch.tx_hash or chain.anchor_of(root)[1] != batch.block_number:
                errors += 1
                problems.append(f"batch {batch.id}: {batch.status}, {len(confirmed)} confirmed anchors")
        tokens: dict[str, int] = defaultdict(int)
        token_id = 1
        while (token := chain.nft_token(token_id)) is not None:
            tokens[token[1]] += 1
            token_id += 1
        for rec in records.values():
            proof = service.proof(rec.id)
            ok = proof is not None and chain.verify_proof(
                bytes.fromhex(proof["root"][2:]), [bytes.fromhex(p[2:]) for p in proof["proof"]],
                leaf_hash(LEAF_TYPES, rec.leaf_values()))
            if not ok or rec.blockchain_status != "anchored" or tokens.get("0x" + rec.blake3) != 1:
                errors += 1
                problems.append(f"record {rec.id}: proof ok {ok}, {rec.blockchain_status},"
                                f" {tokens.get('0x' + rec.blake3, 0)} NFTs")
    finally:
        service.close()
    return records, batches, errors


def audit_deliveries(records: dict, batches: dict, deliveries: list, received: list[dict],
                     problems: list[str]) -> tuple[int, int, int]:
    """(lost, re-delivered under the same id, announced under another id) from the outbox and the dump."""
    got = [r for r in received if r["verified"] and 200 <= r["status"] < 300]
    seen_ids = {r["delivery_id"] for r in got}
    duplicated = len(got) - len(seen_ids)
    lost = 0
    for delivery_id, status in deliveries:
        if status != "delivered" or delivery_id not in seen_ids:
            lost += 1
            problems.append(f"delivery {delivery_id}: {status}, received {delivery_id in seen_ids}")
    ids_of: dict[tuple[str, str], set] = defaultdict(set)
    for r in got:
        data = r["payload"]["data"]
        ids_of[(r["event_type"], data.get("record_id") or data.get("batch_id"))].add(r["delivery_id"])
    expected = [("content.signed", rid) for rid in records] + [("batch.anchored", bid) for bid in batches]
    for key in expected:
        if not ids_of.get(key):
            lost += 1
            problems.append(f"{key[0]} of {key[1]} never arrived")
    other_id = sum(len(ids) - 1 for ids in ids_of.values())
    if other_id:
        problems.append(f"{other_id} events arrived under more than one delivery id")
    return lost, duplicated, other_id


def table(result: dict) -> str:
    """The soak's figures as a plain text table."""
    cells = [str(result[c]) for c in COLUMNS]
    widths = [max(len(c), len(v)) for c, v in zip(COLUMNS, cells)]
    line = "+".join("-" * (w + 2) for w in widths)
    row = lambda values: "|".join(f" {v:>{w}} " for v, w in zip(values, widths))  # noqa: E731
    return "\n".join([line, row(COLUMNS), line, row(cells), line])


def passed(result: dict) -> bool:
    """Nothing lost, announced twice under another id, anchored wrongly or corrupted, and the run completed."""
    return (result["final_exit_code"] == 0 and not result["problems"]
            and result["lost"] == result["other_id"] == result["chain_errors"] == result["corrupted"] == 0)


def main() -> int:
    """Parse the options, run the soak, print the table (and write JSON); 0 when it passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # reap the children on the way
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = soak(args.items, args.kills, args.seed, args.keep, args.batch_size)
    else:
        with tempfile.TemporaryDirectory(prefix="provsim-soak-") as workdir:
            result = soak(args.items, args.kills, args.seed, Path(workdir), args.batch_size)
    result["passed"] = passed(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(table(result))
    for problem in result["problems"]:
        print(f"problem: {problem}")
    print("soak passed" if result["passed"] else "soak FAILED")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
