"""The live progress bar of a run, fed by the runner's per-item callbacks."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RunProgress:
    """A rich progress bar counting items registered, already known and refused."""

    def __init__(self, console: Console, enabled: bool = True):
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
            console=console, disable=not enabled, transient=False,
        )
        self._task = self._progress.add_task("ingest", total=None, note="")
        self.counts = {"registered": 0, "known": 0, "error": 0}

    def __enter__(self) -> "RunProgress":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def total(self, n: int) -> None:
        """Set the number of items."""
        self._progress.update(self._task, total=n)

    def item(self, outcome: str, label: str) -> None:
        """Count one finished item: registered, known or error."""
        self.counts[outcome] += 1
        c = self.counts
        self._progress.update(self._task, advance=1,
                              note=f"{c['registered']} new, {c['known']} known, {c['error']} refused")
