"""Locust load test: POST synthetic Tectra or Royal webhooks, each signed afresh, to the --host receiver URL."""
from __future__ import annotations

import logging
import time
import uuid
from collections import Counter

from locust import FastHttpUser, events, task

from emitter import dialects
from pipeline.synthetic import DIALECT_EVENTS, events as synthetic_events, parse_mix, sample_context

logger = logging.getLogger(__name__)
_worker_requests: Counter[str] = Counter()  # on the master: requests each worker reported


@events.init_command_line_parser.add_listener
def add_options(parser) -> None:
    """The receiver's secret, the dialect and the event mix (--host is the receiver's webhook URL)."""
    parser.add_argument("--secret", default="", env_var="PROVSIM_WEBHOOK_SECRET", is_secret=True,
                        help="webhook secret the receiver verifies with (or $PROVSIM_WEBHOOK_SECRET)")
    parser.add_argument("--dialect", default="tectra", choices=list(DIALECT_EVENTS),
                        help="webhook dialect: tectra (X-Tectra-* HMAC) or royal (Standard Webhooks)")
    parser.add_argument("--mix", default="",
                        help="event weights, e.g. content.signed=0.6,batch.anchored=0.1 (default: the lifecycle's)")


@events.init.add_listener
def check_options(environment, **_kwargs) -> None:
    """Refuse a bad secret or mix at start, in one line; workers get their options from the master later."""
    options = environment.parsed_options
    if options is None or options.worker:
        return
    try:
        dialects.get(options.dialect).check_secret(options.secret)
    except ValueError as exc:
        raise SystemExit(f"locustfile: --secret: {exc}") from None
    if options.mix:
        try:
            parse_mix(options.mix, options.dialect)
        except ValueError as exc:
            raise SystemExit(f"locustfile: --mix: {exc}") from None


@events.worker_report.add_listener
def count_worker_requests(client_id: str, data: dict) -> None:
    """Add up, on the master, the requests each worker reports."""
    _worker_requests[client_id] += data["stats_total"]["num_requests"]


@events.quit.add_listener
def log_worker_requests(**_kwargs) -> None:
    """Log, on the master, how many requests each worker sent, once the final reports are in."""
    for client_id, count in sorted(_worker_requests.items()):
        logger.info("worker %s sent %d requests", client_id, count)


class WebhookUser(FastHttpUser):
    """Sends one synthetic event per task, in its own stream's causal order, signed at send time."""

    def on_start(self) -> None:
        """Open this user's event stream with the run's options."""
        options = self.environment.parsed_options
        self.secret = options.secret
        self.dialect = dialects.get(options.dialect)
        mix = parse_mix(options.mix, options.dialect) if options.mix else None
        context = sample_context if options.dialect == "royal" else None
        self.stream = synthetic_events(options.dialect, mix, context=context)

    @task
    def post_event(self) -> None:
        """POST the next event, named by its type so Locust's stats break down by type."""
        event = next(self.stream).event
        body = self.dialect.render(event)
        headers = self.dialect.sign_headers(self.secret, event.type, event.id, event.timestamp,
                                            "dlv_" + uuid.uuid4().hex, body, time.time())
        self.client.post("", data=body, headers=headers, name=event.type)
