"""Fixtures for the API tests: one real server per test module, two tenants, a loop for receivers."""
from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from api_support import ApiServer, Loop, make_keys, server_settings


@dataclass
class Api:
    """A running server and a client for each of its two tenants."""

    server: ApiServer
    keys: dict[str, str]
    acme: httpx.Client
    globex: httpx.Client


@pytest.fixture(scope="module")
def loop():
    """An asyncio loop in a thread for the receivers and file servers of one module."""
    background = Loop()
    yield background
    background.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The API on the embedded chain with a fresh SQLite file, and tenants "acme" and "globex"."""
    settings = server_settings(tmp_path_factory.mktemp("api"))
    keys = make_keys(settings, "acme", "globex")
    server = ApiServer(settings).start()
    acme, globex = server.client(keys["acme"]), server.client(keys["globex"])
    yield Api(server, keys, acme, globex)
    acme.close()
    globex.close()
    server.stop()
