"""Shared fixtures for the emitter tests: the outside signature vectors and a fresh outbox file."""

import json
from pathlib import Path

import pytest

from emitter import outbox

VECTORS = Path(__file__).parent / "vectors" / "webhook-signatures.json"


@pytest.fixture(scope="session")
def vectors() -> dict:
    """The Tectra and Standard Webhooks signature vectors."""
    return json.loads(VECTORS.read_text(encoding="utf-8"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh outbox database file with the schema in place."""
    path = tmp_path / "outbox.db"
    conn = outbox.connect(path)
    outbox.init_schema(conn)
    conn.close()
    return path


@pytest.fixture
def conn(db_path: Path):
    """A connection to the fresh outbox, closed after the test."""
    connection = outbox.connect(db_path)
    yield connection
    connection.close()
