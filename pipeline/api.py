"""The HTTP API of `provsim serve`: a FastAPI app over one service, and the blocking server for the CLI."""
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from . import api_content, api_webhooks
from .api_errors import install_error_handlers
from .api_events import document_webhooks
from .api_runtime import Network, Runtime
from .connect import ChainSpec
from .settings import Settings

DESCRIPTION = """Tectra- and Royal-compatible provenance API: register media (upload or URL), follow it
through signing, Merkle batching, anchoring and NFT minting, verify files, and manage the signed
webhooks that announce every step. Authenticate with `Authorization: Bearer psk_...`; every refusal
is JSON `{"error": ..., "field": ...}`."""


def create_app(settings: Settings, chain_spec: ChainSpec | None = None, shutdown_grace: float = 10.0,
               network: Network = Network()) -> FastAPI:
    """The API app; on startup it opens the service (on `chain_spec` if given) and starts its background work.

    `network` replaces how downloads and webhook deliveries reach out (tests keep them off the network).

    At shutdown the open batch is closed, the chain worker gets up to `shutdown_grace` seconds to
    anchor what is closed, the delivery engine as long again to send what is due (later retries stay
    in the outbox for the next start), and the service is closed.
    """
    if chain_spec is not None:
        settings = dataclasses.replace(settings, chain=chain_spec)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Run the service's background work for as long as the app serves."""
        rt = Runtime(settings, shutdown_grace, network)
        try:
            await rt.start()
        except BaseException:
            await rt.stop()
            raise
        app.state.runtime = rt
        try:
            yield
        finally:
            await rt.stop()

    app = FastAPI(title="provsim", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    install_error_handlers(app)
    app.include_router(api_webhooks.router)
    app.include_router(api_content.router)
    document_webhooks(app)
    return app


def run_server(settings: Settings, host: str = "127.0.0.1", port: int = 8080,
               chain_spec: ChainSpec | None = None) -> None:
    """Serve the API until interrupted (Ctrl-C or SIGTERM), then shut the background work down cleanly."""
    uvicorn.run(create_app(settings, chain_spec), host=host, port=port, lifespan="on", log_level="info")
