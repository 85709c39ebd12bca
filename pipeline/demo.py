"""`provsim demo`: the whole pipeline over the sample media, on the embedded chain, to a built-in receiver."""
from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from emitter import outbox
from emitter.endpoint import Endpoint, new_secret
from emitter.receiver import Receiver

from .progress import RunProgress
from .runner import RunReport, deliver_outbox, run_pipeline
from .service import Service
from .settings import Settings
from .verify import verify_file

SAMPLE_MEDIA = Path(__file__).resolve().parent.parent / "sample_media"


def run_demo(out: Console, err: Console, data_dir: Path | None = None, media: Path | None = None) -> int:
    """Run the demo; returns the exit status (non-zero if an event failed, was lost or did not verify)."""
    media = media or SAMPLE_MEDIA
    if not media.is_dir():
        err.print(f"[red]error:[/red] media directory {media} not found (pass --media DIR)", highlight=False)
        return 2
    with tempfile.TemporaryDirectory(prefix="provsim-demo-") as tmp:
        settings = Settings(data_dir=data_dir or Path(tmp), batch_size=4, batch_interval=1.0)
        service = Service(settings)
        try:
            return asyncio.run(_demo(service, media, out, err))
        finally:
            service.close()


async def _demo(service: Service, media: Path, out: Console, err: Console) -> int:
    """Register the originals, verify the copies, deliver and cross-check every event."""
    secret = new_secret()
    receiver = Receiver(secret, on_event=lambda line: err.print(f"  receiver: {line}", highlight=False))
    port = await receiver.start()
    endpoint = Endpoint.new(f"http://127.0.0.1:{port}/webhooks/tectra", secret=secret, persistent=False)
    service.add_transient_endpoints([endpoint])
    originals = sorted(str(p) for p in media.iterdir() if p.is_file() and not p.name.startswith("."))
    copies = sorted(p for p in (media / "copies").glob("*") if p.is_file()) if (media / "copies").is_dir() else []
    err.print(f"provsim demo: {len(originals)} items from {media}, receiver on 127.0.0.1:{port}", highlight=False)
    with RunProgress(err) as progress:
        report = await run_pipeline(service, originals, on_item=progress.item, on_total=progress.total)
    checks = [(p, verify_file(service, p)) for p in copies[:]]
    originals_with_hash = [r for r in report.registered if r.perceptual_hash]
    if originals_with_hash:
        original = next((Path(r.source) for r in originals_with_hash), None)
        checks.append((original, verify_file(service, original)))
    for _, data in checks:
        service.emit_verified(data)
    await deliver_outbox(service)
    delivered = outbox.list_deliveries(service.store.conn, endpoint_id=endpoint.id)
    await receiver.wait_for(sum(1 for d in delivered if d["status"] == "delivered"), timeout=10)
    await receiver.stop()
    return _summarise(out, service, report, checks, delivered, receiver)


def _summarise(out: Console, service: Service, report: RunReport, checks, delivered, receiver) -> int:
    """Print the summary tables; returns the exit status."""
    records = {r.id: r for r in service.store.records()}
    t = Table(title="Registered and anchored")
    for col in ("item", "origin", "perceptual hash", "batch", "tx"):
        t.add_column(col)
    batch_tx = {b.id: b for b in service.store.batches()}
    for rec in service.store.records():
        b = batch_tx.get(rec.batch_id)
        t.add_row(rec.original_filename, rec.origin_type, rec.perceptual_hash or f"- ({rec.phash_reason})",
                  (rec.batch_id or "-")[:8], f"{b.tx_hash[:18]}... block {b.block_number}" if b and b.tx_hash else "pending")
    out.print(t)

    m = Table(title="Verification of copies (perceptual matching)")
    for col in ("file", "matched record", "sha256", "perceptual", "blockchain", "confidence", "authentic"):
        m.add_column(col)
    for path, data in checks:
        rec = records.get(data["record_id"])
        c = data["checks"]
        m.add_row(path.name, rec.original_filename if rec else "-", c["sha256"]["details"],
                  c["perceptual_hash"]["details"], c["blockchain"]["details"],
                  f"{data['confidence']:.2f}", "yes" if data["authentic"] else "no")
    out.print(m)

    verified_ids = {r.delivery_id for r in receiver.received if r.verified}
    unverified = [r for r in receiver.received if not r.verified]
    by_status: dict[str, int] = {}
    for d in delivered:
        by_status[d["status"]] = by_status.get(d["status"], 0) + 1
    lost = [d["id"] for d in delivered if d["status"] == "delivered" and d["id"] not in verified_ids]
    s = Table(title="Summary", show_header=False)
    s.add_row("items registered", str(len(report.registered)))
    s.add_row("items refused", str(len(report.errors)))
    s.add_row("batches anchored", str(len(report.batches)))
    s.add_row("events delivered", str(by_status.get("delivered", 0)))
    s.add_row("events failed", str(by_status.get("failed", 0)))
    s.add_row("deliveries verified by receiver", str(len(verified_ids)))
    s.add_row("signature failures at receiver", str(len(unverified)))
    s.add_row("delivered but not seen (lost)", str(len(lost)))
    out.print(s)
    ok = not unverified and not lost and not by_status.get("failed") and not report.anchor_errors \
        and by_status.get("delivered", 0) == len(delivered)
    out.print("[green]demo passed[/green]" if ok else "[red]demo failed[/red]")
    return 0 if ok else 1
