"""`provsim replay`: re-send the stored events of a time window in their original order, as Svix's recover does."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from emitter import outbox, replay as replays

from .runner import deliver_outbox
from .service import Service
from .settings import DEFAULT_DATA_DIR, Settings
from .terminal import fail, out


def _epoch(text: str, option: str) -> float:
    """Epoch seconds of an ISO 8601 time (UTC when it names no zone); one-line error naming the option."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r}: not an ISO 8601 time, e.g. 2025-06-14T09:32:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def replay(
    since: Annotated[str, typer.Option("--since", help="Start of the window (ISO 8601, UTC unless a zone is given).")],
    until: Annotated[Optional[str], typer.Option("--until", help="End of the window, exclusive (default: now).")] = None,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="Only this endpoint's deliveries (ep_...).")] = None,
    event: Annotated[Optional[str], typer.Option("--event", help="Only events of this type.")] = None,
    status: Annotated[Optional[str], typer.Option("--status", help="Only deliveries in this state (failed, delivered).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be re-sent; send nothing.")] = False,
    time_scale: Annotated[float, typer.Option("--time-scale", min=0.0, help="Multiply retry waits.")] = 1.0,
    data_dir: Annotated[Path, typer.Option("--data-dir", envvar="PROVSIM_DATA_DIR", help="State directory.")] = DEFAULT_DATA_DIR,
) -> None:
    """Re-send stored events of a window in their original order: same event and delivery ids, new attempts."""
    start = _epoch(since, "--since")
    end = _epoch(until, "--until") if until is not None else datetime.now(timezone.utc).timestamp() + 1e-3
    service = Service(Settings(data_dir=data_dir, time_scale=time_scale))
    try:
        try:
            rows = replays.select(service.store.conn, start, end, endpoint, event, status)
        except ValueError as exc:
            fail(str(exc))
        due = [row for row in rows if row["status"] in ("failed", "delivered")]
        table = Table("delivery", "event", "type", "url", "status", title=f"{len(due)} to replay")
        for row in due:
            table.add_row(row["id"], row["event_id"], row["event_type"], row["url"], row["status"])
        out.print(table)
        if dry_run or not due:
            return
        with service.store.transaction() as conn:
            replays.requeue(conn, [row["id"] for row in due])
        asyncio.run(deliver_outbox(service, per_endpoint=1))
        after = outbox.list_deliveries(service.store.conn, delivery_ids=[row["id"] for row in due])
    finally:
        service.close()
    delivered = sum(1 for row in after if row["status"] == "delivered")
    out.print(f"replayed {len(due)}: {delivered} delivered, {len(due) - delivered} not", highlight=False)
    raise typer.Exit(0 if delivered == len(due) else 1)
