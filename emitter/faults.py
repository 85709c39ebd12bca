"""Fault injection for load runs: the fault spec, per-event seeded picks, faulty requests and the scorecard."""

import base64
import dataclasses
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from emitter.clock import iso_utc
from emitter.event import Event

HONEST, DUP, REORDER, DELAY, BADSIG, STALE, MALFORMED = (
    "honest", "dup", "reorder", "delay", "badsig", "stale", "malformed",
)
FAULTS = (DUP, REORDER, DELAY, BADSIG, STALE, MALFORMED)
KINDS = (HONEST, *FAULTS)
STALE_AGE = 600.0
REORDER_WINDOW = 1.0
ERROR = "error"
CLASSES = ("2xx", "4xx", "5xx", ERROR)

_HOLD = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|s|m)$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class FaultPlan:
    """Per-event fault probabilities (at most one fault an event), the delay hold and the reorder window."""

    probabilities: dict[str, float] = field(default_factory=dict)
    delay_hold: float = 0.0
    reorder_window: float = REORDER_WINDOW

    def pick(self, rng: random.Random) -> str:
        """The kind for the next event: one fault drawn by its probability, else honest."""
        draw = rng.random()
        for kind, probability in self.probabilities.items():
            if draw < probability:
                return kind
            draw -= probability
        return HONEST

    def spec(self) -> str:
        """The plan written back as a spec string."""
        items = []
        for kind, probability in self.probabilities.items():
            hold = f":{self.delay_hold:g}s" if kind == DELAY else ""
            items.append(f"{kind}={probability:g}{hold}")
        return ",".join(items)


def parse(spec: str) -> FaultPlan:
    """A FaultPlan from e.g. "dup=0.05,delay=0.02:30s"; ValueError naming the bad item otherwise."""
    probabilities: dict[str, float] = {}
    hold = 0.0
    for item in spec.split(","):
        item = item.strip()
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise ValueError(f"bad fault {item!r}: write NAME=PROBABILITY, e.g. dup=0.05")
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r} in {item!r}: use one of {', '.join(FAULTS)}")
        if name in probabilities:
            raise ValueError(f"fault {name!r} is given twice")
        text, colon, hold_text = value.partition(":")
        if name == DELAY:
            if not colon:
                raise ValueError(f"fault {item!r} needs a hold time, e.g. delay=0.02:30s")
            hold = _hold(hold_text.strip(), item)
        elif colon:
            raise ValueError(f"fault {item!r} takes no ':' part (only delay has a hold time)")
        probabilities[name] = _probability(text.strip(), item)
    total = sum(probabilities.values())
    if total > 1.0 + 1e-9:
        raise ValueError(f"fault probabilities in {spec!r} add up to {total:g}, more than 1")
    return FaultPlan(probabilities, hold)


def _probability(text: str, item: str) -> float:
    """A probability in [0, 1] from text; ValueError naming the item otherwise."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"bad probability {text!r} in fault {item!r}: use a number from 0 to 1")
    return value


def _hold(text: str, item: str) -> float:
    """Seconds from a hold time like 30s, 500ms or 2m (the unit is required); ValueError naming the item otherwise."""
    if not _HOLD.match(text):
        raise ValueError(f"bad hold time {text!r} in fault {item!r}: use e.g. 30s, 500ms or 2m")
    return parse_seconds(text)


def parse_seconds(text: str) -> float:
    """Seconds from a time like 30s, 500ms or 2m (a bare number is seconds); ValueError otherwise."""
    match = _HOLD.match(text.strip() if text.strip()[-1:].isalpha() else text.strip() + "s")
    if not match:
        raise ValueError(f"bad time {text!r}: use e.g. 30s, 500ms or 2m")
    return float(match.group(1)) * _UNIT[match.group(2)]


def wrong_secret(rng: random.Random) -> str:
    """A well-formed secret nobody holds ("whsec_" + base64 of 24 random bytes), for bad signatures."""
    return "whsec_" + base64.b64encode(rng.randbytes(24)).decode("ascii")


def stale_event(event: Event, now: float) -> Event:
    """The event restamped STALE_AGE seconds before `now` (Tectra signs its timestamp only through the body)."""
    return dataclasses.replace(event, timestamp=iso_utc(now - STALE_AGE))


def malformed(body: bytes) -> bytes:
    """The body cut in half: UTF-8 text that is not valid JSON."""
    return body[: len(body) // 2].decode("utf-8", "ignore").encode("utf-8")


def expected(kind: str, dialect: str) -> str:
    """What a correct receiver answers to this kind of request, in words."""
    if kind == DUP:
        return "same 2xx twice"
    if kind == STALE and dialect != "royal":
        return "either (informational)"
    if kind in (BADSIG, STALE, MALFORMED):
        return "4xx"
    return "2xx"


def status_class(status: int | None) -> str:
    """The answer class of a status: "2xx", "4xx", "5xx", or "error" (None, timeouts, others)."""
    if status is None:
        return ERROR
    return {2: "2xx", 4: "4xx", 5: "5xx"}.get(status // 100, ERROR)


@dataclass
class _Tally:
    """Counts for one kind: events sent, answers by class, events meeting and missing the expectation."""

    sent: int = 0
    answers: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    passed: int = 0
    failed: int = 0
    not_reordered: int = 0


class Scorecard:
    """Per kind: events sent, answers by class, the expected answer and the verdict for one dialect."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.tallies = {kind: _Tally() for kind in KINDS}

    def record(self, kind: str, status: int | None) -> None:
        """One event of `kind` got `status` (None: timeout or connection error)."""
        tally = self.tallies[kind]
        answer = status_class(status)
        tally.sent += 1
        tally.answers[answer] += 1
        if self._meets(kind, answer):
            tally.passed += 1
        else:
            tally.failed += 1

    def record_reorder(self, status: int | None, reordered: bool) -> None:
        """A held event got `status`; reordered is False when no later event of its group came in time."""
        self.record(REORDER, status)
        if not reordered:
            self.tallies[REORDER].not_reordered += 1

    def record_dup(self, first: int | None, second: int | None) -> None:
        """A delivery sent twice got `first`, then `second`: it passes if both are the same 2xx."""
        tally = self.tallies[DUP]
        tally.sent += 1
        tally.answers[status_class(first)] += 1
        tally.answers[status_class(second)] += 1
        if first == second and status_class(first) == "2xx":
            tally.passed += 1
        else:
            tally.failed += 1

    def _meets(self, kind: str, answer: str) -> bool:
        """Whether an answer class is what a correct receiver gives this kind."""
        want = expected(kind, self.dialect)
        if want == "either (informational)":
            return answer in ("2xx", "4xx")
        return answer == want

    def verdict(self, kind: str) -> str:
        """"pass", "fail", "info" (tectra stale: no rule to break) or "-" when none was sent."""
        tally = self.tallies[kind]
        if not tally.sent:
            return "-"
        if kind == STALE and self.dialect != "royal":
            return "info"
        return "fail" if tally.failed else "pass"

    def note(self, kind: str) -> str:
        """Why a row reads as it does, where that needs saying."""
        tally = self.tallies[kind]
        if kind == STALE and self.dialect != "royal":
            return "tectra signs no timestamp; retries come late"
        if kind == REORDER and tally.not_reordered:
            return f"{tally.not_reordered} unswapped: no later event in time"
        if tally.failed:
            return f"{tally.failed} of {tally.sent} not answered as expected"
        return ""

    def rows(self) -> list[dict]:
        """One dict per kind: kind, sent, answers by class, expected, verdict, failed and a note."""
        return [
            {
                "kind": kind,
                "sent": tally.sent,
                **tally.answers,
                "expected": expected(kind, self.dialect),
                "verdict": self.verdict(kind),
                "failed": tally.failed,
                "note": self.note(kind),
            }
            for kind, tally in self.tallies.items()
        ]

    def failures(self) -> Sequence[str]:
        """The kinds whose verdict is fail."""
        return [kind for kind in KINDS if self.verdict(kind) == "fail"]
