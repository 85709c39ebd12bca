"""`provsim trigger`: one event or a named scenario, realistic and signed, fired at a receiver."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .terminal import fail, out


def trigger(
    event: Annotated[Optional[str], typer.Argument(help="An event type of either dialect, e.g. content.signed.")] = None,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="The receiver's webhook URL.")] = None,
    secret: Annotated[Optional[str], typer.Option("--secret", envvar="PROVSIM_WEBHOOK_SECRET", help="The secret the receiver verifies with.")] = None,
    dialect: Annotated[Optional[str], typer.Option("--dialect", help="tectra or royal (default: the event's own).")] = None,
    scenario: Annotated[Optional[str], typer.Option("--scenario", help="Fire a whole lifecycle instead; --list shows them.")] = None,
    settings: Annotated[Optional[list[str]], typer.Option("--set", help="Override a field: data.context.user_id=42 (JSON values, else text); repeatable.")] = None,
    record_id: Annotated[Optional[str], typer.Option("--record-id", help="With --from-db: the record to announce.")] = None,
    from_db: Annotated[bool, typer.Option("--from-db", help="Build the event from a real stored record (--record-id).")] = False,
    data_dir: Annotated[Path, typer.Option("--data-dir", envvar="PROVSIM_DATA_DIR", help="State directory, for --from-db.")] = Path(".provsim"),
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for the generated item.")] = None,
    list_scenarios: Annotated[bool, typer.Option("--list", help="List the scenarios, a line each.")] = False,
) -> None:
    """Fire one realistic signed event, or a named scenario, at a receiver; exit 1 unless every answer is 2xx."""
    from .event_schemas import DIALECT_OF  # imported here: the synthetic streams cost every other command time
    from .scenarios import SCENARIOS, event_of, from_record, override, parse_setting, scenario_events
    from .store import Store
    from .trigger import fire

    if list_scenarios:
        for name, known in SCENARIOS.items():
            out.print(f"{name:<28} {known.description}", highlight=False)
        return
    if endpoint is None or secret is None:
        fail("give --endpoint URL and --secret S (or $PROVSIM_WEBHOOK_SECRET)")
    if (event is None) == (scenario is None):
        fail("give an EVENT or --scenario NAME (provsim trigger --list shows the scenarios)")
    try:
        overrides = dict(parse_setting(item) for item in settings or ())
        if scenario is not None:
            fired_events = [override(e, overrides) for e in scenario_events(scenario, seed)]
            wanted = SCENARIOS[scenario].dialect
        elif from_db:
            if record_id is None:
                fail("--from-db needs --record-id ID")
            store = Store(data_dir / "provsim.db")
            try:
                fired_events = [override(from_record(store, event, record_id), overrides)]
            finally:
                store.close()
            wanted = DIALECT_OF[event]
        else:
            fired_events = [event_of(event, seed, overrides=overrides)]
            wanted = DIALECT_OF[event]
        if dialect is not None and dialect != wanted:
            fail(f"{scenario or event} is a {wanted} event; --dialect {dialect} does not send it")
        results = fire(fired_events, endpoint, secret, wanted)
    except ValueError as exc:
        fail(str(exc))
    for result in results:
        answer = str(result.status) if result.status is not None else result.error
        out.print(f"{result.event_type:<36} {result.delivery_id}  -> {answer}  ({result.duration_ms:.1f} ms)", highlight=False)
    raise typer.Exit(0 if all(r.ok for r in results) else 1)
