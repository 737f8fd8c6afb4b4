"""Shared fixtures: ``fake`` is a started ``FakeCometAPI`` with default settings."""

from __future__ import annotations

import importlib.util
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
    """A throwaway PostgreSQL server for the whole session (see ``tests/pg_server.py``).

    Skipped without the server binaries or the ``postgres`` extra (README's test command
    installs only ``test``); under CI (``CI=true``) that is a failure."""
    required = os.environ.get("CI") == "true"
    if importlib.util.find_spec("psycopg") is None:
        if required:
            pytest.fail("psycopg (the postgres extra) is not installed: .ci/run installs it")
        pytest.skip("the postgres extra (psycopg) is not installed; see the README")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if required:
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
