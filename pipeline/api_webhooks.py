"""Webhook endpoints (Tectra's registration API shape, either dialect) and their delivery log, per tenant."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from emitter import outbox
from emitter.endpoint import Endpoint

from . import api_auth, royal_events, tectra_events
from .api_errors import ApiError, check_http_url, json_body_doc, read_json
from .api_runtime import runtime

DIALECT_EVENTS = {"tectra": tectra_events.TECTRA_EVENTS, "royal": royal_events.ROYAL_EVENTS}

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


class WebhookIn(BaseModel):
    """A webhook to register: where to send, which events (all of the dialect's if omitted), which dialect."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="http:// or https:// URL the events are POSTed to.")
    events: list[str] | None = Field(default=None, min_length=1, max_length=16)
    dialect: Literal["tectra", "royal"] = "tectra"


class WebhookOut(BaseModel):
    """A registered webhook, without its secret."""

    id: str
    url: str
    events: list[str]
    dialect: str
    created_at: str


class WebhookCreated(WebhookOut):
    """A webhook just registered: its secret is shown this once."""

    secret: str


class RotatedSecret(BaseModel):
    """The new secret; the previous one keeps signing for 24 hours."""

    secret: str


def _shown(ep: Endpoint) -> dict:
    """A webhook as the API shows it (None events means every event of its dialect)."""
    return {"id": ep.id, "url": ep.url, "events": list(ep.events or DIALECT_EVENTS[ep.dialect]),
            "dialect": ep.dialect, "created_at": ep.created_at}


def _owned_endpoint(request: Request, endpoint_id: str, tenant: str) -> Endpoint:
    """The tenant's endpoint with this id: 404 if there is none, 403 if another tenant's."""
    conn = runtime(request).service.store.conn
    ep = outbox.get_endpoint(conn, endpoint_id)
    if ep is None or ep.id != endpoint_id or not ep.persistent:
        raise ApiError(404, f"no webhook {endpoint_id}")
    api_auth.check_endpoint_owner(conn, endpoint_id, tenant)
    return ep


@router.post("/webhooks", status_code=201, response_model=WebhookCreated,
             openapi_extra=json_body_doc(WebhookIn), summary="Register a webhook endpoint")
async def create_webhook(request: Request, tenant: str = Depends(api_auth.current_tenant)) -> dict:
    """Register an endpoint for this tenant; the secret for verifying signatures is returned only here."""
    body = await read_json(request, WebhookIn)
    check_http_url(body.url, "url")
    if body.events is not None:
        known = DIALECT_EVENTS[body.dialect]
        unknown = [name for name in body.events if name not in known]
        if unknown:
            raise ApiError(422, f"events: unknown {body.dialect} event {unknown[0]!r}; choose from {', '.join(known)}",
                           "events")
    ep = Endpoint.new(body.url, events=tuple(dict.fromkeys(body.events)) if body.events else None,
                      dialect=body.dialect, tenant=tenant)
    with runtime(request).service.store.transaction() as conn:
        outbox.save_endpoint(conn, ep)
        api_auth.own_endpoint(conn, ep.id, tenant)
    return {**_shown(ep), "secret": ep.secret}


@router.get("/webhooks", response_model=list[WebhookOut], summary="List this tenant's webhooks")
async def list_webhooks(request: Request, tenant: str = Depends(api_auth.current_tenant)) -> list[dict]:
    """The tenant's webhooks in creation order, without secrets."""
    conn = runtime(request).service.store.conn
    mine = api_auth.endpoint_ids(conn, tenant)
    return [_shown(ep) for ep in outbox.list_endpoints(conn, persistent_only=True) if ep.id in mine]


@router.get("/webhooks/{endpoint_id}", response_model=WebhookOut, summary="Show one webhook")
async def get_webhook(endpoint_id: str, request: Request, tenant: str = Depends(api_auth.current_tenant)) -> dict:
    """One of the tenant's webhooks, without its secret."""
    return _shown(_owned_endpoint(request, endpoint_id, tenant))


@router.delete("/webhooks/{endpoint_id}", status_code=204, summary="Remove a webhook")
async def delete_webhook(endpoint_id: str, request: Request,
                         tenant: str = Depends(api_auth.current_tenant)) -> Response:
    """Remove the endpoint; its deliveries still waiting are marked failed (a retry sends them)."""
    _owned_endpoint(request, endpoint_id, tenant)
    with runtime(request).service.store.transaction() as conn:
        outbox.remove_endpoint(conn, endpoint_id)
    return Response(status_code=204)


@router.post("/webhooks/{endpoint_id}/rotate", response_model=RotatedSecret, summary="Rotate a webhook's secret")
async def rotate_webhook(endpoint_id: str, request: Request, tenant: str = Depends(api_auth.current_tenant)) -> dict:
    """A new secret for the endpoint; deliveries carry signatures with both for the next 24 hours."""
    _owned_endpoint(request, endpoint_id, tenant)
    with runtime(request).service.store.transaction() as conn:
        rotated = outbox.rotate_secret(conn, endpoint_id)
    return {"secret": rotated.secret}


@router.get("/deliveries", tags=["deliveries"], summary="List deliveries to this tenant's webhooks")
async def list_deliveries(
    request: Request,
    status: Literal["pending", "delivering", "delivered", "failed"] | None = Query(default=None),
    endpoint: str | None = Query(default=None, description="Only deliveries to this webhook (ep_...)."),
    tenant: str = Depends(api_auth.current_tenant),
) -> list[dict]:
    """Deliveries in creation order with their attempt log (times are epoch seconds)."""
    conn = runtime(request).service.store.conn
    if endpoint is not None:
        api_auth.check_endpoint_owner(conn, endpoint, tenant)
    mine = api_auth.endpoint_ids(conn, tenant)
    return [d for d in outbox.list_deliveries(conn, status=status, endpoint_id=endpoint) if d["endpoint_id"] in mine]


@router.post("/deliveries/{delivery_id}/retry", status_code=202, tags=["deliveries"],
             summary="Send a delivery again")
async def retry_delivery(delivery_id: str, request: Request, tenant: str = Depends(api_auth.current_tenant)) -> dict:
    """Queue a failed or delivered delivery again now, same delivery id, one more attempt."""
    rt = runtime(request)
    conn = rt.service.store.conn
    found = outbox.list_deliveries(conn, delivery_ids=[delivery_id])
    if not found:
        raise ApiError(404, f"no delivery {delivery_id}")
    if found[0]["endpoint_id"] not in api_auth.endpoint_ids(conn, tenant):
        raise ApiError(403, f"delivery {delivery_id} belongs to another tenant")
    with rt.service.store.transaction() as tx:
        queued = outbox.retry_delivery(tx, delivery_id)
    if not queued:
        raise ApiError(409, f"delivery {delivery_id} is {found[0]['status']}:"
                            " only failed or delivered ones are retried")
    rt.engine.notify()
    return {"id": delivery_id, "status": "pending"}
