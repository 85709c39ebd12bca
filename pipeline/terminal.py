"""Where commands print: standard output, standard error, and the one-line error that ends a command."""
from __future__ import annotations

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error and exit."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)
