"""The OpenAPI 3.1 `webhooks` section: every event body of both dialects, as a receiver gets it."""

import inspect

from fastapi import FastAPI

from .event_schemas import DIALECT_OF, EVENTS

HEADERS = {
    "tectra": "Signed with `X-Tectra-Signature` (hex HMAC-SHA256 of the raw body, key = the secret's UTF-8 bytes);"
              " `X-Tectra-Event`, `X-Tectra-Delivery` (dedupe on it) and `X-Tectra-Timestamp` come with it.",
    "royal": "Signed the Standard Webhooks way: `webhook-id`, `webhook-timestamp`, `webhook-signature`"
             " (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`), also sent as `svix-*`.",
}


def document_webhooks(app: FastAPI) -> None:
    """Add one webhook per event to the app's OpenAPI document, its request body the event's schema."""
    for event_type, body_model in EVENTS.items():
        dialect = DIALECT_OF[event_type]
        app.webhooks.post(event_type, tags=[f"{dialect} events"], summary=f"{event_type} ({dialect} dialect)",
                          description=f"{body_model.__doc__} {HEADERS[dialect]}")(_receiver(body_model))


def _receiver(body_model: type):
    """A handler whose one parameter is the event body: FastAPI documents it and never calls it."""
    def receive(body) -> None:
        """What a receiver of this event gets."""
    receive.__signature__ = inspect.Signature(
        [inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=body_model)])
    return receive
