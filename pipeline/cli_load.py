"""`provsim load`: signed synthetic webhooks at a receiver, open or closed loop, with faults, and its report."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.live import Live

from emitter import faults
from emitter.loadgen import MAX_CONNECTIONS

from .terminal import err, fail, out

# The load engine and the event streams are imported when `provsim load` runs: every other command
# would pay their import time (libcurl, hdrhistogram, the synthetic image pool) for nothing.


def _seconds(value: str) -> float:
    """A duration option: 30s, 500ms, 2m or a number of seconds."""
    try:
        seconds = faults.parse_seconds(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if seconds <= 0:
        raise typer.BadParameter(f"must be above 0, got {value!r}")
    return seconds


def load(
    endpoint: Annotated[str, typer.Option("--endpoint", help="The receiver's webhook URL.")],
    secret: Annotated[str, typer.Option("--secret", envvar="PROVSIM_WEBHOOK_SECRET",
                                        help="The secret the receiver verifies with (or $PROVSIM_WEBHOOK_SECRET).")],
    dialect: Annotated[str, typer.Option("--dialect", help="tectra (X-Tectra-* HMAC) or royal (Standard Webhooks).")] = "tectra",
    rate: Annotated[Optional[float], typer.Option("--rate", min=0.001, help="Events per second, at a constant arrival rate (open loop).")] = None,
    duration: Annotated[str, typer.Option("--duration", help="How long to send: 30s, 2m, 500ms.")] = "10s",
    connections: Annotated[int, typer.Option("--connections", min=1, max=MAX_CONNECTIONS, help="Concurrent connections at most.")] = 64,
    max_mode: Annotated[bool, typer.Option("--max", help="Closed loop: every connection sends back to back, to find the receiver's saturation rate.")] = False,
    mix: Annotated[Optional[str], typer.Option("--mix", help="Event weights, e.g. content.signed=0.6,batch.anchored=0.1 (default: the lifecycle's).")] = None,
    fault_spec: Annotated[Optional[str], typer.Option("--faults", help="e.g. dup=0.05,reorder=0.05,delay=0.02:30s,badsig=0.01,stale=0.01,malformed=0.01")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0.001, help="Seconds per request (default: the dialect's, 30 or 15).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for events and fault picks, to repeat a run.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the figures as JSON to this file.")] = None,
    plot_path: Annotated[Optional[Path], typer.Option("--plot", help="Draw latency over time and its distribution to this PNG.")] = None,
) -> None:
    """Load a webhook receiver with signed synthetic events; exit 1 if it mishandled any (non-2xx or a fault)."""
    from emitter import dialects, loadgen

    from .synthetic import events, parse_mix

    if (rate is None) == (not max_mode):
        fail("give --rate R (open loop) or --max (closed loop), not both or neither")
    try:
        seconds = _seconds(duration)
        weights = parse_mix(mix, dialect) if mix else None
        plan = faults.parse(fault_spec) if fault_spec else None
        dialects.get(dialect).check_secret(secret)
        source = events(dialect, weights, seed)
        target = loadgen.Target(endpoint, secret, dialect)
        with Live(console=err, refresh_per_second=4, transient=True) as live:
            report = loadgen.run(source, target, None if max_mode else rate, seconds, connections, plan,
                                 progress=lambda snapshot: live.update(snapshot.live()), seed=seed, timeout=timeout)
    except (ValueError, typer.BadParameter) as exc:
        fail(str(exc))
    out.print(report.table())
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if plot_path is not None:
        report.plot(plot_path)
    raise typer.Exit(0 if _handled(report) else 1)


def _handled(report) -> bool:
    """Whether every event was answered 2xx, or, with faults, the scorecard found nothing mishandled."""
    if report.scorecard is not None:
        return not report.failed_kinds()
    return report.ok == report.completed and not report.timeouts and not report.connection_errors
