"""Shared fixtures: ``fake`` is a started ``FakeCometAPI`` with default settings."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from pg_server import PostgresServer, find_bin_dir

from cometrunway.testing import FakeCometAPI


@pytest.fixture
async def fake() -> AsyncIterator[FakeCometAPI]:
    async with FakeCometAPI() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole session (see ``tests/pg_server.py``)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL server binaries not found: .ci/run must install them")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; see the README")
    server = PostgresServer(bin_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh database of its own for one test."""
    return postgres_server.new_database()
