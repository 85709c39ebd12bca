"""contracts/compile.js with the pinned solcjs reproduces the committed build artifacts (registry and NFT)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "contracts" / "build"


def test_fresh_compile_matches_committed_artifact(tmp_path):
    if not (REPO / "node_modules" / "solc").is_dir():
        pytest.fail("node_modules/solc is missing: run `make npm` to install the pinned solcjs")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js, then run `make npm`")
    run = subprocess.run(
        [node, str(REPO / "contracts" / "compile.js"), str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"compile.js failed (run `make npm`?):\n{run.stderr}"
    committed = sorted(p.name for p in BUILD.glob("*.json"))
    assert sorted(p.name for p in tmp_path.glob("*.json")) == committed
    assert {"ProvenanceRegistry.json", "ProvenanceNFT.json"} <= set(committed)
    for name in committed:
        fresh = json.loads((tmp_path / name).read_text())
        kept = json.loads((BUILD / name).read_text())
        hint = f"contracts/build/{name} is stale: run `node contracts/compile.js` and commit it"
        assert fresh["abi"] == kept["abi"], hint
        assert fresh["bytecode"] == kept["bytecode"], hint
        assert fresh["deployedBytecode"] == kept["deployedBytecode"], hint
        assert fresh == kept, hint
