"""The load run's report: figures, JSON, rich tables for the end and the live view, and the latency plot."""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from hdrh.histogram import HdrHistogram
from rich.console import Group
from rich.table import Table
from rich.text import Text

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}
_VERDICT_STYLE = {"pass": "green", "fail": "bold red", "info": "yellow", "-": "dim"}


class Second(NamedTuple):
    """One second of a run by completion time: answers, errors and latency percentiles in ms."""

    t: int
    completed: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def latency_figures(histogram: HdrHistogram) -> dict[str, float]:
    """p50, p90, p99, p99.9 and max of a microsecond histogram, in milliseconds (zeros when empty)."""
    if not histogram.get_total_count():
        return {**dict.fromkeys(PERCENTILES, 0.0), "max": 0.0}
    values = histogram.get_percentile_to_value_dict(list(PERCENTILES.values()))
    figures = {name: values[p] / 1000.0 for name, p in PERCENTILES.items()}
    figures["max"] = histogram.get_max_value() / 1000.0
    return figures


def distribution(histogram: HdrHistogram, steps_per_half: int = 5) -> list[tuple[float, float]]:
    """(percentile, ms) pairs spaced like HdrHistogram's percentile output, up to 1 - 1/count."""
    total = histogram.get_total_count()
    if not total:
        return []
    percentiles = []
    step = 0
    while True:
        p = 100.0 * (1.0 - 0.5 ** (step / steps_per_half))
        if step and 1.0 - p / 100.0 < 1.0 / total:
            break
        percentiles.append(p)
        step += 1
    values = histogram.get_percentile_to_value_dict(percentiles)
    return [(p, values[p] / 1000.0) for p in percentiles]


@dataclass
class LoadReport:
    """What a load run came to, at the end or as a live snapshot (final=False)."""

    # duration_s runs from the start to the answer of the last scheduled send; elapsed_s also covers
    # faults held back past it (delay, reorder). achieved_rate is events answered (or held back as a
    # fault) per second of duration_s; sent and completed count requests, a dup's second send too.

    mode: str
    dialect: str
    target_rate: float | None
    achieved_rate: float
    sent: int
    completed: int
    in_flight: int
    duration_s: float
    elapsed_s: float
    latency_ms: dict[str, float]
    statuses: dict[int, int]
    timeouts: int
    connection_errors: int
    connections: int
    timeline: list[Second] = field(default_factory=list)
    distribution: list[tuple[float, float]] = field(default_factory=list)
    faults: str | None = None
    scorecard: list[dict] | None = None
    final: bool = True

    @property
    def ok(self) -> int:
        """Requests answered 2xx."""
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    def failed_kinds(self) -> list[str]:
        """The fault kinds whose scorecard verdict is fail (empty without faults)."""
        return [row["kind"] for row in self.scorecard or () if row["verdict"] == "fail"]

    def to_json(self) -> dict:
        """The figures as a JSON-ready dict (what `--json FILE` writes)."""
        return {
            "mode": self.mode,
            "dialect": self.dialect,
            "target_rate": self.target_rate,
            "achieved_rate": round(self.achieved_rate, 2),
            "connections": self.connections,
            "sent": self.sent,
            "completed": self.completed,
            "duration_s": round(self.duration_s, 3),
            "elapsed_s": round(self.elapsed_s, 3),
            "latency_ms": {name: round(value, 3) for name, value in self.latency_ms.items()},
            "status_codes": {str(status): count for status, count in sorted(self.statuses.items())},
            "timeouts": self.timeouts,
            "connection_errors": self.connection_errors,
            "faults": self.faults,
            "scorecard": self.scorecard,
            "faults_failed": self.failed_kinds() if self.scorecard is not None else None,
            "timeline": [second._asdict() for second in self.timeline],
            "distribution": [{"percentile": p, "latency_ms": ms} for p, ms in self.distribution],
        }

    def table(self) -> Group:
        """The end-of-run rich renderable: figures, status codes and, with faults, the scorecard."""
        figures = Table(title="provsim load", show_header=False, title_justify="left")
        figures.add_column("figure", style="bold")
        figures.add_column("value", justify="right")
        for name, value in self._figure_rows():
            figures.add_row(name, value)
        parts = [figures]
        if self.statuses:
            codes = Table(title="status codes", title_justify="left")
            codes.add_column("status")
            codes.add_column("count", justify="right")
            for status, count in sorted(self.statuses.items()):
                codes.add_row(str(status), f"{count:,}")
            parts.append(codes)
        if self.scorecard is not None:
            parts.append(self._scorecard_table())
        return Group(*parts)

    def live(self) -> Table:
        """A compact rich renderable for the progress display while the run goes on."""
        last = self.timeline[-1] if self.timeline else None
        view = Table(show_header=True, title=f"provsim load: {self._title()}", title_justify="left")
        for name in ("elapsed", "sent", "answered", "in flight", "rate/s", "p50 ms", "p99 ms", "last s p99", "errors"):
            view.add_column(name, justify="right")
        view.add_row(
            f"{self.elapsed_s:.1f}s",
            f"{self.sent:,}",
            f"{self.completed:,}",
            f"{self.in_flight:,}",
            f"{self.completed / self.elapsed_s:,.0f}" if self.elapsed_s else "0",
            f"{self.latency_ms['p50']:.2f}",
            f"{self.latency_ms['p99']:.2f}",
            f"{last.p99_ms:.2f}" if last else "-",
            f"{self.timeouts + self.connection_errors:,}",
        )
        return view

    def plot(self, path: str | Path) -> Path:
        """Write a PNG: latency percentiles per second over the run, and the percentile distribution."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # drawing is rare: no import cost otherwise
        from matplotlib.figure import Figure

        figure = Figure(figsize=(10, 8), layout="constrained")
        FigureCanvasAgg(figure)
        over_time, spread = figure.subplots(2, 1)
        figure.suptitle(f"provsim load: {self._title()}")
        self._plot_timeline(over_time)
        self._plot_distribution(spread)
        out = Path(path)
        figure.savefig(out, format="png", dpi=100)
        return out

    def _title(self) -> str:
        """Mode, rate and dialect in a few words."""
        rate = "max rate" if self.target_rate is None else f"{self.target_rate:g}/s"
        return f"{self.dialect}, {self.mode} loop, {rate}, {self.connections} connections"

    def _figure_rows(self) -> list[tuple[str, str]]:
        """(name, value) rows of the figures table."""
        rows = [
            ("mode", f"{self.mode} loop"),
            ("dialect", self.dialect),
            ("connections", str(self.connections)),
            ("target rate", "max" if self.target_rate is None else f"{self.target_rate:,.1f}/s"),
            ("achieved rate", f"{self.achieved_rate:,.1f}/s"),
            ("sent", f"{self.sent:,}"),
            ("completed", f"{self.completed:,}"),
            ("duration", f"{self.duration_s:.2f}s"),
        ]
        if self.elapsed_s - self.duration_s > 0.01:
            rows.append(("with held faults", f"{self.elapsed_s:.2f}s"))
        rows += [(f"latency {name}", f"{value:,.2f} ms") for name, value in self.latency_ms.items()]
        rows += [("timeouts", f"{self.timeouts:,}"), ("connection errors", f"{self.connection_errors:,}")]
        return rows

    def _scorecard_table(self) -> Table:
        """The fault scorecard as a rich table, verdicts coloured."""
        failed = self.failed_kinds()
        caption = f"receiver mishandles: {', '.join(failed)}" if failed else "receiver handled every fault as expected"
        card = Table(
            title=f"fault scorecard ({self.faults})", title_justify="left",
            caption=caption, caption_justify="left", caption_style="bold red" if failed else "bold green",
        )
        for name in ("kind", "sent", "2xx", "4xx", "5xx", "error", "expected", "verdict", "note"):
            card.add_column(name, justify="right" if name in ("sent", "2xx", "4xx", "5xx", "error") else "left")
        for row in self.scorecard:
            verdict = Text(row["verdict"], style=_VERDICT_STYLE[row["verdict"]])
            counts = [f"{row[name]:,}" for name in ("sent", "2xx", "4xx", "5xx", "error")]
            card.add_row(row["kind"], *counts, row["expected"], verdict, row["note"])
        return card

    def _plot_timeline(self, axes) -> None:
        """Per-second p50/p90/p99/max latency (log ms) with answers per second behind them."""
        axes.set_title("latency over the run (by second of completion)")
        axes.set_xlabel("seconds since start")
        axes.set_ylabel("latency (ms)")
        if not self.timeline:
            axes.text(0.5, 0.5, "no answers", ha="center", va="center", transform=axes.transAxes)
            return
        seconds = [row.t for row in self.timeline]
        answers = axes.twinx()
        answers.bar(seconds, [row.completed for row in self.timeline], width=0.9, color="0.88", align="edge")
        answers.set_ylabel("answers per second")
        axes.set_zorder(answers.get_zorder() + 1)
        axes.patch.set_visible(False)
        for name, style in (("p50_ms", "-"), ("p90_ms", "--"), ("p99_ms", "-."), ("max_ms", ":")):
            values = [getattr(row, name) if row.completed else math.nan for row in self.timeline]
            axes.plot([t + 0.5 for t in seconds], values, style, label=name.removesuffix("_ms"))
        if any(row.completed for row in self.timeline):
            axes.set_yscale("log")
        axes.legend(loc="upper left")

    def _plot_distribution(self, axes) -> None:
        """Latency by percentile on a log 1/(1-p) axis, the way HdrHistogram plots it."""
        axes.set_title("latency by percentile")
        axes.set_ylabel("latency (ms)")
        if not self.distribution:
            axes.text(0.5, 0.5, "no answers", ha="center", va="center", transform=axes.transAxes)
            return
        xs = [1.0 / (1.0 - p / 100.0) for p, _ in self.distribution]
        axes.plot(xs, [ms for _, ms in self.distribution], "-", color="C0")
        axes.axhline(self.latency_ms["max"], color="C3", linestyle=":", label=f"max {self.latency_ms['max']:.2f} ms")
        axes.set_xscale("log")
        decades = max(1, math.ceil(math.log10(max(xs))))
        ticks = [10.0**k for k in range(decades + 1)]
        axes.set_xticks(ticks, ["0%"] + [f"{100 - 100 / t:g}%" for t in ticks[1:]])
        axes.set_xlim(1.0, ticks[-1])
        axes.set_xlabel("percentile")
        axes.legend(loc="upper left")
