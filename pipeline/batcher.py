"""Groups accepted records into Merkle batches: N leaves or T seconds, whichever comes first."""
from __future__ import annotations

import asyncio
from collections.abc import Callable


class Batcher:
    """Collects record ids and hands each full or timed-out group to `on_close`."""

    def __init__(self, size: int, interval: float, on_close: Callable[[list[str]], None]):
        if size < 1:
            raise ValueError(f"batch size must be at least 1, got {size}")
        if interval <= 0:
            raise ValueError(f"batch interval must be positive, got {interval}")
        self.size = size
        self.interval = interval
        self._on_close = on_close
        self._open: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, record_id: str) -> None:
        """Add one record; closes the batch when it is full."""
        self._open.append(record_id)
        if len(self._open) == 1:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)
        if len(self._open) >= self.size:
            self.flush()

    def flush(self) -> None:
        """Close the open batch now, if it has any leaves."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._open:
            ids, self._open = self._open, []
            self._on_close(ids)
