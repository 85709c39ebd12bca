"""The embedded chain's journal kept in the store, so the in-process chain survives restarts."""
from __future__ import annotations

from .store import Store


class StoreJournal:
    """Replays journalled transactions from the store and buffers new ones until committed."""

    def __init__(self, store: Store):
        self._store = store
        self._pending: list[tuple[bytes, int]] = []

    def entries(self) -> list[tuple[bytes, int]]:
        """Committed raw transactions with their block timestamps, in send order."""
        return self._store.journal_entries()

    def append(self, raw_tx: bytes, block_timestamp: int) -> None:
        """Buffer a sent transaction; it is written by the caller's next state transaction."""
        self._pending.append((raw_tx, block_timestamp))

    def take(self) -> list[tuple[bytes, int]]:
        """The buffered entries, handed over to be written in the caller's transaction."""
        pending, self._pending = self._pending, []
        return pending
