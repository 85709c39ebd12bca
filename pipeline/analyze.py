"""Per-file work for a process-pool worker: one-pass digests plus the perceptual fingerprint."""

from __future__ import annotations

import mimetypes
import os
import select
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.digest import Digest, IngestError, hash_file
from pipeline.fingerprint import Fingerprint, fingerprint
from pipeline.ingest import Caps
from pipeline.marking import read_file


@dataclass(frozen=True)
class Analysis:
    """Everything the pipeline needs to know about one file's content."""

    digest: Digest
    fingerprint: Fingerprint
    mark: bytes | None = None  # the watermark payload read from an image, when verifying

    @classmethod
    def of_content_hash(cls, blake3: str) -> Analysis:
        """What is known of content registered by its BLAKE3 alone: no file, so no SHA-256, size or look."""
        return cls(Digest(sha256=None, blake3=blake3, size=None),
                   Fingerprint(perceptual_hash=None, reason="registered by content hash; no file to fingerprint",
                               origin_type="other", mime="application/octet-stream", width=None, height=None))


def analyze_file(path: str, cap_image: int, cap_other: int, mark_key: bytes | None = None) -> Analysis:
    """Fingerprint and hash one non-empty file (image cap for images, other cap otherwise), and read its watermark
    payload under mark_key if one is given (images only); raise IngestError naming the file on any problem."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise IngestError(path, "not a regular file")
        size = info.st_size
        if not size:
            raise IngestError(path, "empty file (0 bytes)")
        named_image = (mimetypes.guess_type(path)[0] or "").startswith("image/")
        early = cap_image if named_image else max(cap_image, cap_other)  # before decoding: the most that may apply
        if size > early:
            raise IngestError(path, f"file is {size} bytes, over the cap of {early} bytes")
        looks = fingerprint(path)
        digest = hash_file(path, Caps(cap_image, cap_other).limit_for(looks.mime, path))
        mark = read_file(path, mark_key) if mark_key is not None and looks.perceptual_hash is not None else None
        return Analysis(digest, looks, mark)
    except IngestError:
        raise
    except OSError as exc:
        raise IngestError(path, exc.strerror or str(exc)) from exc
    except Exception as exc:
        raise IngestError(path, f"{type(exc).__name__}: {exc}") from exc


def analyze_files(paths: Sequence[str], cap_image: int, cap_other: int) -> list[Analysis | IngestError]:
    """analyze_file over several files in one worker call; each failure is returned in its place."""
    results: list[Analysis | IngestError] = []
    for path in paths:
        try:
            results.append(analyze_file(path, cap_image, cap_other))
        except IngestError as exc:
            results.append(exc)
    return results



def die_with(owner_pid: int) -> None:
    """Pool initializer: end this worker as soon as the process that owns the pool is gone, even by SIGKILL."""
    # The workers are forked by multiprocessing's fork server, and each keeps a handle that keeps that
    # server alive: neither would ever notice the owner's death without this watch.
    if not hasattr(os, "pidfd_open"):  # Linux only: elsewhere the workers outlive a killed owner
        return
    try:
        handle = os.pidfd_open(owner_pid)
    except OSError:  # the owner is gone already
        os._exit(1)
    threading.Thread(target=_exit_when_ended, args=(handle,), name="owner-watch", daemon=True).start()


def _exit_when_ended(handle: int) -> None:
    """Wait until the process behind a pidfd ends, then exit at once."""
    select.select([handle], [], [])
    os._exit(1)
