"""`provsim demo`: the whole pipeline over the sample media, on the embedded chain, to a built-in receiver."""
from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.table import Table

from emitter import outbox
from emitter.endpoint import Endpoint, new_secret
from emitter.receiver import Receiver

from .chain import ChainError
from .connect import ChainSpec
from .nodes import NodeError
from .progress import RunProgress
from .runner import RunReport, deliver_outbox, run_pipeline
from .service import Service
from .settings import Settings
from .verify import verify_file

SAMPLE_MEDIA = Path(__file__).resolve().parent.parent / "sample_media"


def run_demo(out: Console, err: Console, data_dir: Path | None = None, media: Path | None = None,
             chain: ChainSpec | None = None, confirmations: int = 1, watermark: bool = True) -> int:
    """Run the demo; returns the exit status (non-zero if an event failed, was lost or did not verify)."""
    media = media or SAMPLE_MEDIA
    if not media.is_dir():
        err.print(f"[red]error:[/red] media directory {media} not found (pass --media DIR)", highlight=False)
        return 2
    with tempfile.TemporaryDirectory(prefix="provsim-demo-") as tmp:
        settings = Settings(data_dir=data_dir or Path(tmp), batch_size=4, batch_interval=1.0,
                            chain=chain or ChainSpec(), confirmations=confirmations, allow_private=True,
                            watermark=watermark)
        service = Service(settings)
        try:
            _ = service.chain
            return asyncio.run(_demo(service, media, out, err))
        except (NodeError, ChainError, ValueError) as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            return 2
        finally:
            service.close()


@dataclass
class _Listener:
    """A built-in receiver of one dialect, the endpoint pointing at it, and what it was sent."""

    dialect: str
    receiver: Receiver
    endpoint: Endpoint
    delivered: list[dict] = field(default_factory=list)

    def lost(self) -> list[str]:
        """Deliveries the outbox counts as delivered that the receiver never verified."""
        seen = {r.delivery_id for r in self.receiver.received if r.verified}
        key = "id" if self.dialect == "tectra" else "event_id"  # Royal receivers know the message id
        return [d["id"] for d in self.delivered if d["status"] == "delivered" and d[key] not in seen]


async def _listen(service: Service, dialect: str, err: Console) -> _Listener:
    """Start a receiver of this dialect on 127.0.0.1 and register it for this run."""
    secret = new_secret()
    receiver = Receiver(secret, dialect=dialect,
                        on_event=lambda line: err.print(f"  {dialect:6} {line[11:]}", highlight=False))
    port = await receiver.start()
    endpoint = Endpoint.new(f"http://127.0.0.1:{port}/webhooks/{dialect}", secret=secret, dialect=dialect,
                            persistent=False)
    service.add_transient_endpoints([endpoint])
    return _Listener(dialect, receiver, endpoint)


async def _demo(service: Service, media: Path, out: Console, err: Console) -> int:
    """Register the originals, verify the copies, deliver to both dialects and cross-check every event."""
    listeners = [await _listen(service, "tectra", err), await _listen(service, "royal", err)]
    originals = sorted(str(p) for p in media.iterdir() if p.is_file() and not p.name.startswith("."))
    copies = sorted(p for p in (media / "copies").glob("*") if p.is_file()) if (media / "copies").is_dir() else []
    err.print(f"provsim demo: {len(originals)} items from {media}; Tectra and Royal receivers on 127.0.0.1",
              highlight=False)
    with RunProgress(err) as progress:
        report = await run_pipeline(service, originals, on_item=progress.item, on_total=progress.total,
                                    on_note=lambda line: err.print(f"  chain: {line}", highlight=False))
    # The copies match their original perceptually; one original shows an exact match as well; with the
    # watermark stage, one marked copy does too, and a shrunk, re-compressed copy of it carries its payload.
    to_verify = copies + [Path(r.source) for r in report.registered if r.perceptual_hash][:1]
    # A photo shows it best (hard-edged drawings carry a fainter mark): JPEG originals first, then by name.
    marked = sorted((r for r in report.registered if r.id in report.marked),
                    key=lambda r: (r.mime != "image/jpeg", r.original_filename))
    for rec in marked[:1]:
        copy = Path(report.marked[rec.id].path)
        to_verify += [copy, _shared_copy(copy, service.settings.data_dir / "shared")]
    checks = [(p, verify_file(service, p)) for p in to_verify]
    for _, data in checks:
        service.emit_verified(data)
    await deliver_outbox(service)
    for listener in listeners:
        listener.delivered = outbox.list_deliveries(service.store.conn, endpoint_id=listener.endpoint.id)
        await listener.receiver.wait_for(sum(1 for d in listener.delivered if d["status"] == "delivered"), 10)
        await listener.receiver.stop()
    return _summarise(out, service, report, checks, listeners)


def _short(hex_str: str | None, keep: int = 10) -> str:
    """0x1234abcd…ef90: enough of a hash to recognise it on an 80-column terminal."""
    if not hex_str:
        return "-"
    return f"{hex_str[:keep]}…{hex_str[-4:]}"


def _summarise(out: Console, service: Service, report: RunReport, checks, listeners: list[_Listener]) -> int:
    """Print the summary tables; returns the exit status."""
    records = {r.id: r for r in service.store.records()}
    t = Table(title="Registered")
    for col in ("item", "origin", "perceptual hash", "batch", "NFT"):
        t.add_column(col)
    for rec in records.values():
        nft = service.store.nft(rec.id)
        t.add_row(rec.original_filename, rec.origin_type, rec.perceptual_hash or "null (not an image)",
                  (rec.batch_id or "-")[:8], f"#{nft['token_id']}" if nft else "-")
    out.print(t)

    b = Table(title=f"Anchored on {service.chain.network} (chain id {service.chain.chain_id})")
    for col in ("batch", "leaves", "merkle root", "tx hash", "block"):
        b.add_column(col)
    for batch in service.store.batches():
        b.add_row(batch.id[:8], str(batch.leaf_count), _short(batch.merkle_root), _short(batch.tx_hash),
                  str(batch.block_number or "pending"))
    out.print(b)

    m = Table(title="Verification (content.verified)")
    for col in ("file", "matched", "checks passed", "confidence", "authentic"):
        m.add_column(col)
    for path, data in checks:
        rec = records.get(data["record_id"])
        passed = [name for name, c in data["checks"].items() if c["passed"]]
        m.add_row(path.name, rec.original_filename if rec else "-",
                  ", ".join(_label(n, data["checks"][n]) for n in passed) or "none",
                  f"{data['confidence']:.2f}", "yes" if data["authentic"] else "no")
    out.print(m)

    s = Table(title="Summary")
    for col in ("", *(f"{lst.dialect} receiver" for lst in listeners)):
        s.add_column(col)
    rows = {"events delivered": [], "events failed": [], "verified by the receiver": [],
            "bad signatures": [], "delivered but never seen (lost)": []}
    ok = True
    for lst in listeners:
        statuses = [d["status"] for d in lst.delivered]
        unverified = [r for r in lst.receiver.received if not r.verified]
        verified = {r.delivery_id for r in lst.receiver.received if r.verified}
        lost = lst.lost()
        rows["events delivered"].append(statuses.count("delivered"))
        rows["events failed"].append(len(statuses) - statuses.count("delivered"))
        rows["verified by the receiver"].append(len(verified))
        rows["bad signatures"].append(len(unverified))
        rows["delivered but never seen (lost)"].append(len(lost))
        ok = ok and not unverified and not lost and statuses.count("delivered") == len(statuses)
    s.add_row("items registered / refused", *[f"{len(report.registered)} / {len(report.errors)}"] * len(listeners))
    s.add_row("batches anchored", *[str(len(report.batches))] * len(listeners))
    for name, values in rows.items():
        s.add_row(name, *(str(v) for v in values))
    out.print(s)
    out.print("[green]demo passed[/green]" if ok else "[red]demo failed[/red]")
    return 0 if ok else 1


def _shared_copy(marked: Path, folder: Path) -> Path:
    """A copy of a marked image as it might be passed around: half the size, re-compressed at JPEG quality 75."""
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{marked.stem}.half.q75.jpg"
    with Image.open(marked) as image:
        image.convert("RGB").resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS).save(
            dest, "JPEG", quality=75)
    return dest


def _label(name: str, check: dict) -> str:
    """A passed check in a few words: 'sha256', 'phash (0)', 'watermark (1/128)', 'chain'."""
    if name == "perceptual_hash":
        return f"phash ({check['details'].removeprefix('Distance ')})"
    if name == "watermark":
        return f"watermark ({check['details'].split('(')[1].split(')')[0]})"
    return {"blockchain": "chain"}.get(name, name)
