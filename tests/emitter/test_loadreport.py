"""The load report: figures from the histogram, JSON, the rich tables and the PNG plot."""

import io
import json
from pathlib import Path

from hdrh.histogram import HdrHistogram
from rich.console import Console

from emitter import faults
from emitter.loadreport import LoadReport, Second, distribution, latency_figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _histogram() -> HdrHistogram:
    """1000 latencies of 1..1000 ms, in microseconds."""
    histogram = HdrHistogram(1, 60_000_000, 3)
    for ms in range(1, 1001):
        histogram.record_value(ms * 1000)
    return histogram


def _report(with_faults: bool = True) -> LoadReport:
    """A finished open-loop report over the 1..1000 ms histogram, with a scorecard if asked."""
    histogram = _histogram()
    card = faults.Scorecard("royal")
    card.record("honest", 200)
    card.record("malformed", 500)
    return LoadReport(
        mode="open", dialect="royal", target_rate=500.0, achieved_rate=498.6, sent=1002, completed=1000,
        in_flight=0, duration_s=2.005, elapsed_s=2.3, latency_ms=latency_figures(histogram),
        statuses={200: 990, 401: 10}, timeouts=1, connection_errors=1, connections=16,
        timeline=[Second(0, 500, 1, 4.0, 9.0, 12.0, 30.0), Second(1, 0, 0, 0.0, 0.0, 0.0, 0.0),
                  Second(2, 500, 1, 5.0, 10.0, 15.0, 40.0)],
        distribution=distribution(histogram), faults="malformed=0.01" if with_faults else None,
        scorecard=card.rows() if with_faults else None,
    )


def test_latency_figures_and_distribution_come_from_the_histogram() -> None:
    figures = latency_figures(_histogram())
    assert list(figures) == ["p50", "p90", "p99", "p99.9", "max"]
    assert abs(figures["p50"] - 500) <= 1 and abs(figures["p99"] - 990) <= 1 and abs(figures["max"] - 1000) <= 1
    spread = distribution(_histogram())
    assert spread[0][0] == 0.0 and spread[-1][0] < 99.9
    assert [ms for _, ms in spread] == sorted(ms for _, ms in spread)
    empty = HdrHistogram(1, 60_000_000, 3)
    assert latency_figures(empty) == dict.fromkeys(figures, 0.0) and distribution(empty) == []


def test_to_json_holds_every_figure() -> None:
    data = json.loads(json.dumps(_report().to_json()))
    assert {key: data[key] for key in ("mode", "target_rate", "achieved_rate", "sent", "completed")} == {
        "mode": "open", "target_rate": 500.0, "achieved_rate": 498.6, "sent": 1002, "completed": 1000,
    }
    assert data["duration_s"] == 2.005 and data["status_codes"] == {"200": 990, "401": 10}
    assert (data["timeouts"], data["connection_errors"]) == (1, 1)
    assert set(data["latency_ms"]) == {"p50", "p90", "p99", "p99.9", "max"}
    assert data["timeline"][2] == {
        "t": 2, "completed": 500, "errors": 1, "p50_ms": 5.0, "p90_ms": 10.0, "p99_ms": 15.0, "max_ms": 40.0,
    }
    rows = {row["kind"]: row for row in data["scorecard"]}
    assert rows["malformed"]["verdict"] == "fail" and rows["honest"]["verdict"] == "pass"
    assert data["faults_failed"] == ["malformed"]
    plain = _report(with_faults=False).to_json()
    assert plain["scorecard"] is None and plain["faults_failed"] is None


def test_table_shows_figures_codes_and_scorecard() -> None:
    out = io.StringIO()
    Console(file=out, width=160).print(_report().table())
    text = out.getvalue()
    for expected in ("achieved rate", "498.6/s", "latency p99.9", "401", "fault scorecard", "receiver mishandles: malformed"):
        assert expected in text
    plain = io.StringIO()
    Console(file=plain, width=160).print(_report(with_faults=False).table())
    assert "scorecard" not in plain.getvalue()


def test_plot_writes_a_png(tmp_path: Path) -> None:
    path = _report().plot(tmp_path / "latency.png")
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_plot_of_a_run_without_answers_still_writes_a_png(tmp_path: Path) -> None:
    empty = HdrHistogram(1, 60_000_000, 3)
    report = LoadReport(
        mode="max", dialect="tectra", target_rate=None, achieved_rate=0.0, sent=3, completed=0, in_flight=0,
        duration_s=1.0, elapsed_s=1.0, latency_ms=latency_figures(empty), statuses={}, timeouts=0,
        connection_errors=3, connections=1,
    )
    assert report.plot(tmp_path / "empty.png").read_bytes().startswith(PNG_MAGIC)
