"""What a load source hands the load generator: one finished event and the causal group it belongs to."""

from dataclasses import dataclass

from emitter.event import Event


@dataclass(frozen=True)
class LoadItem:
    """One event to send under load; events sharing a group (one record's lifecycle) are in causal order."""

    # follows names other groups this event comes after too: a batch announcement follows the
    # signing of every record it lists, so sending it before one of them breaks causal order.

    event: Event
    group: str | None = None
    follows: tuple[str, ...] = ()
