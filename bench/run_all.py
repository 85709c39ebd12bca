"""Runs every benchmark in bench/ one after another and prints their tables (`make bench`)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = ("bench_hashing", "bench_fingerprint", "bench_phash_lookup", "bench_watermark", "bench_pipeline",
           "bench_outbox", "bench_load", "bench_chain", "bench_confirm")


def main() -> int:
    """Run each bench in its own process; returns non-zero if any failed."""
    here = Path(__file__).resolve().parent
    failed = []
    for name in BENCHES:
        print(f"\n=== {name}", flush=True)
        if subprocess.run([sys.executable, str(here / f"{name}.py")], cwd=here.parent).returncode:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
