"""A pytest plugin with a ``fake_cometapi`` fixture, registered when cometrunway is installed.

::

    async def test_my_pipeline(fake_cometapi):
        async with Client("test-key", base_url=fake_cometapi.url) as client:
            ...

The fixture is a started ``FakeCometAPI`` with default settings, closed after the test; tune
it in the test (``fake_cometapi.lifecycle = Lifecycle.by_polls(1, 2)``,
``fake_cometapi.inject(...)``). It is an async fixture: the test suite needs an asyncio
plugin such as pytest-asyncio (``asyncio_mode = "auto"``) or anyio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .testing import FakeCometAPI

__all__ = ["fake_cometapi"]


@pytest.fixture
async def fake_cometapi() -> AsyncIterator[FakeCometAPI]:
    """A started ``FakeCometAPI`` on 127.0.0.1, closed after the test."""
    async with FakeCometAPI() as server:
        yield server
