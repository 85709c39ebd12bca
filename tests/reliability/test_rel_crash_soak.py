"""Crash soak, short: `provsim run` SIGKILLed at five seeded points and restarted until it completes."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rel_support import ROOT


@pytest.mark.timeout(420)
def test_kill_9_five_times_loses_nothing_duplicates_only_by_id_and_keeps_the_database_sound(tmp_path: Path):
    """The soak tool with 120 items and 5 kills finds nothing lost, misannounced, double-anchored or corrupt."""
    report = tmp_path / "soak.json"
    tool = subprocess.Popen([sys.executable, "tools/soak.py", "--items", "120", "--kills", "5", "--seed", "7",
                             "--json", str(report), "--keep", str(tmp_path / "work")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        table, _ = tool.communicate(timeout=360)
    finally:
        if tool.poll() is None:
            tool.send_signal(signal.SIGTERM)  # the tool reaps its runs and its receiver on the way out
            tool.wait(30)
    result = json.loads(report.read_text())
    assert result["problems"] == [], table
    assert result["kills"] == 5 and result["runs"] == 6, table
    assert result["final_exit_code"] == 0
    assert result["records"] == result["items"] == 120
    assert result["batches"] >= 15, "every record in a batch of at most 8"
    assert result["lost"] == 0 and result["other_id"] == 0 and result["chain_errors"] == 0
    assert result["integrity"] == ["ok"] and result["corrupted"] == 0
    assert result["received"] == result["deliveries"] + result["duplicated"], "re-deliveries keep their id"
    assert result["passed"] is True and tool.returncode == 0
