"""Schemathesis drives every operation of the served OpenAPI document: no input may cause a 5xx."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import schemathesis
from api_support import ApiServer, make_keys, server_settings
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from emitter.sender import SendResult
from pipeline.api import create_app
from pipeline.api_runtime import Network
from pipeline.settings import Settings


class NoNetwork(httpx.AsyncBaseTransport):
    """A download transport that opens no connection at all: every fetch fails as unreachable."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"network disabled in this test: {request.url.host}", request=request)


class NoSend:
    """A webhook sender that opens no connection: every delivery attempt fails."""

    async def send(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> SendResult:
        return SendResult(None, "network disabled in this test", 0.0)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """A server whose downloads and webhooks never leave the process, and a key for it."""
    config = server_settings(tmp_path_factory.mktemp("fuzz"))
    keys = make_keys(config, "fuzz")
    server = ApiServer(config, network=api_network()).start()
    yield server, keys["fuzz"]
    server.stop()


def api_network() -> Network:
    """The server's network: none."""
    return Network(download_transport=NoNetwork(), sender=NoSend())


# The document is the app's own, built without serving; the test then drives the served app with it.
SCHEMA = schemathesis.openapi.from_dict(create_app(Settings(data_dir=Path("unused"))).openapi())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_input_causes_a_server_error(fuzzed, label, mode):
    server, key = fuzzed

    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=OPERATIONS[label].as_strategy(mode))
    def call(case):
        response = case.call(base_url=server.url, headers={"Authorization": f"Bearer {key}"})
        shown = f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
        assert response.status_code < 500, shown
        if response.status_code >= 400:
            assert "error" in response.json(), f"not a JSON error: {shown}"

    call()
