"""One clock for the emitter: real epoch time, with a time scale that shrinks every wait."""

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class Clock:
    """Real time for timestamps; waits (retry delays, sleeps) multiplied by time_scale."""

    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.time_scale < 0:
            raise ValueError(f"time_scale must be >= 0, got {self.time_scale}")

    def now(self) -> float:
        """Current epoch time in seconds (never scaled)."""
        return time.time()

    def scaled(self, seconds: float) -> float:
        """How long a wait of `seconds` lasts on this clock."""
        return seconds * self.time_scale

    async def sleep(self, seconds: float) -> None:
        """Sleep for the scaled length of `seconds`."""
        await asyncio.sleep(self.scaled(seconds))


def iso_utc(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with second precision, e.g. 2025-06-14T09:32:00Z."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
