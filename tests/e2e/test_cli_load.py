"""`provsim load` as a user runs it: against `provsim listen` in both dialects, with faults, and bad options."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_support import listening, provsim

from emitter.endpoint import new_secret

FAULTS = "dup=0.05,reorder=0.05,delay=0.03:300ms,badsig=0.03,stale=0.03,malformed=0.03"


@pytest.mark.parametrize("dialect", ["tectra", "royal"])
def test_open_loop_with_faults_against_provsim_listen(tmp_path: Path, dialect: str):
    secret = new_secret()
    dump, figures, plot = tmp_path / "got.jsonl", tmp_path / "load.json", tmp_path / "load.png"
    with listening(secret, dialect, dump) as url:
        run = provsim("load", "--endpoint", url, "--secret", secret, "--dialect", dialect, "--rate", "200",
                      "--duration", "2s", "--faults", FAULTS, "--seed", "7", "--json", str(figures),
                      "--plot", str(plot), check=False, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(figures.read_text())
    assert report["mode"] == "open" and report["dialect"] == dialect
    assert abs(report["achieved_rate"] - 200) < 20
    assert report["sent"] == report["completed"] and report["timeouts"] == report["connection_errors"] == 0
    rows = {row["kind"]: row for row in report["scorecard"]}
    assert all(rows[kind]["sent"] > 0 for kind in ("honest", "dup", "badsig", "malformed"))
    assert report["faults_failed"] == []
    received = [json.loads(line) for line in dump.read_text().splitlines()]
    assert len(received) == report["sent"], "every request sent reached the receiver"
    verified = [r for r in received if r["verified"]]
    assert len(received) - len(verified) == rows["badsig"]["sent"] + (rows["stale"]["sent"] if dialect == "royal" else 0)
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "fault scorecard" in run.stdout and "handled every fault as expected" in run.stdout


def test_a_receiver_with_the_wrong_secret_fails_the_run(tmp_path: Path):
    with listening(new_secret(), "tectra", tmp_path / "got.jsonl") as url:
        run = provsim("load", "--endpoint", url, "--secret", new_secret(), "--max", "--duration", "1s",
                      "--connections", "4", check=False, timeout=60)
    assert run.returncode == 1
    assert "401" in run.stdout


@pytest.mark.parametrize("args, message", [
    (["--rate", "10", "--max"], "give --rate R (open loop) or --max (closed loop), not both or neither"),
    ([], "give --rate R (open loop) or --max (closed loop), not both or neither"),
    (["--rate", "10", "--faults", "dup=2"], "bad probability '2' in fault 'dup=2'"),
    (["--rate", "10", "--mix", "content.signed=x"], "mix item 'content.signed=x': weight 'x' is not a number"),
    (["--rate", "10", "--mix", "hashed=1"], "'hashed' is not a tectra event"),
    (["--rate", "10", "--duration", "soon"], "bad time 'soon'"),
])
def test_bad_options_are_one_line_errors(args: list[str], message: str):
    run = provsim("load", "--endpoint", "http://127.0.0.1:9/", "--secret", "whsec_x", *args, check=False)
    assert run.returncode == 2
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
