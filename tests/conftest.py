"""Shared fixtures: ``fake`` is a started ``FakeCometAPI`` with default settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cometrunway.testing import FakeCometAPI


@pytest.fixture
async def fake() -> AsyncIterator[FakeCometAPI]:
    async with FakeCometAPI() as server:
        yield server
