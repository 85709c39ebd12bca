"""One-pass SHA-256 + BLAKE3 (hash_file) against the two hashes run separately, and its peak RSS, on a 1 GiB file.

The file is random-ish data in a temporary directory (deleted afterwards) and is read once
before timing, so every pass reads from the page cache and the figures measure hashing, not the
disk. Goals: one-pass throughput at least 0.9 x that of SHA-256 and BLAKE3 run one after the
other (their times summed), and a hashing process peaking under 64 MiB RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blake3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.digest import CHUNK_SIZE, hash_file  # noqa: E402

GIB = 1024**3
BLOCK = 16 * 1024**2


def make_file(path: Path, size: int) -> None:
    """Write size bytes: one random 16 MiB block, each repetition with a distinct first 8 bytes."""
    block = bytearray(os.urandom(BLOCK))
    with open(path, "wb") as handle:
        for index in range(0, size, BLOCK):
            block[:8] = index.to_bytes(8, "little")
            handle.write(block[: min(BLOCK, size - index)])


def read_with(path: Path, update: Callable[[memoryview], None]) -> float:
    """Stream the file through update with readinto into a reused 1 MiB buffer; return the seconds taken."""
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    started = time.perf_counter()
    with open(path, "rb") as handle:
        while count := handle.readinto(buffer):
            update(view[:count])
    return time.perf_counter() - started


def timed_sha256(path: Path) -> tuple[float, str]:
    """SHA-256 alone over the file."""
    hasher = hashlib.sha256()
    return read_with(path, hasher.update), hasher.hexdigest()


def timed_blake3(path: Path, threads: int = 1) -> tuple[float, str]:
    """BLAKE3 alone over the file, with the given max_threads."""
    hasher = blake3.blake3(max_threads=threads)
    return read_with(path, hasher.update), hasher.hexdigest()


def peak_rss_of_hashing(path: Path) -> tuple[int, int]:
    """Run hash_file in a fresh child; return its RSS high-water mark (VmHWM) after imports and after hashing, in KiB.

    VmHWM from /proc belongs to the child's own address space; ru_maxrss would not do here, because
    Linux carries the parent's RSS at fork into the child's ru_maxrss across exec.
    """
    child = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
        "from pipeline.digest import hash_file\n"
        "def hwm():\n"
        "    with open('/proc/self/status') as status:\n"
        "        return next(line.split()[1] for line in status if line.startswith('VmHWM:'))\n"
        "print(hwm())\n"
        "hash_file(sys.argv[1])\n"
        "print(hwm())\n"
    )
    result = subprocess.run([sys.executable, "-c", child, str(path)], check=True, capture_output=True, text=True)
    after_imports, after_hashing = (int(value) for value in result.stdout.split())
    return after_imports, after_hashing


def main() -> None:
    """Build the file, time every variant (best of --rounds), print throughputs, the ratio and peak RSS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=GIB, help="file size in bytes (default 1 GiB)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; the best of each is kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="provsim-bench-") as tmp:
        path = Path(tmp) / "big.bin"
        make_file(path, args.size)
        read_with(path, lambda chunk: None)
        rss_after_imports, rss_peak = peak_rss_of_hashing(path)
        one_pass, sha_only, b3_only, b3_auto = [], [], [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            digest = hash_file(path)
            one_pass.append(time.perf_counter() - started)
            seconds, sha_hex = timed_sha256(path)
            sha_only.append(seconds)
            seconds, b3_hex = timed_blake3(path)
            b3_only.append(seconds)
            b3_auto.append(timed_blake3(path, blake3.blake3.AUTO)[0])
            assert (digest.sha256, digest.blake3, digest.size) == (sha_hex, b3_hex, args.size)
    size_mb = args.size / 1e6
    separate = min(sha_only) + min(b3_only)
    print(f"file: {args.size} bytes, page-cached; chunk {CHUNK_SIZE} bytes; best of {args.rounds} rounds; {os.cpu_count()} CPUs")
    print(f"one pass (hash_file, SHA-256 + BLAKE3)   {min(one_pass):6.3f} s  {size_mb / min(one_pass):7.0f} MB/s")
    print(f"SHA-256 alone                            {min(sha_only):6.3f} s  {size_mb / min(sha_only):7.0f} MB/s")
    print(f"BLAKE3 alone (1 thread)                  {min(b3_only):6.3f} s  {size_mb / min(b3_only):7.0f} MB/s")
    print(f"BLAKE3 alone (max_threads=AUTO)          {min(b3_auto):6.3f} s  {size_mb / min(b3_auto):7.0f} MB/s")
    print(f"separate, summed                         {separate:6.3f} s  {size_mb / separate:7.0f} MB/s")
    ratio = separate / min(one_pass)
    print(f"ratio one-pass / separate throughput: {ratio:.3f} (goal >= 0.9) {'OK' if ratio >= 0.9 else 'MISSED'}")
    peak_mib = rss_peak / 1024
    print(
        f"peak RSS of a hash_file process: {peak_mib:.1f} MiB (after imports {rss_after_imports / 1024:.1f} MiB)"
        f" (goal < 64 MiB) {'OK' if peak_mib < 64 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
