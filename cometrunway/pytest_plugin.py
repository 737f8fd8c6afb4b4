"""A pytest plugin with a ``fake_cometapi`` fixture, registered when cometrunway is installed.

::

    @pytest.mark.asyncio          # pytest-asyncio strict mode (its default); not needed in auto
    async def test_my_pipeline(fake_cometapi):
        async with Client("test-key", base_url=fake_cometapi.url) as client:
            ...

The fixture is a started ``FakeCometAPI`` with default settings, closed after the test; tune
it in the test (``fake_cometapi.lifecycle = Lifecycle.by_polls(1, 2)``,
``fake_cometapi.inject(...)``). The fake's server runs on the test's own event loop, so the
fixture works with every way of running async tests:

* pytest-asyncio in strict mode (its default: mark the test ``@pytest.mark.asyncio``) or in
  auto mode (``asyncio_mode = "auto"``);
* anyio's pytest plugin (``@pytest.mark.anyio``, with the asyncio backend: aiohttp, which
  serves the fake, runs on asyncio only).

How: ``fake_cometapi`` itself is a plain fixture that hands over to one of two async
fixtures with the same body, one per runner. anyio runs an async fixture when the test
requests ``anyio_backend``; pytest-asyncio in strict mode runs only fixtures declared with
``pytest_asyncio.fixture``. Declaring one fixture both ways would start the server on
pytest-asyncio's loop under an anyio test, where nothing serves it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .testing import FakeCometAPI

__all__ = ["fake_cometapi"]

_ANYIO_BACKEND = "anyio_backend"


def _new_fake() -> FakeCometAPI:
    # Imported here: pytest loads this plugin in every project where cometrunway is
    # installed, and most of their test runs never ask for the fake (nor its aiohttp server).
    from .testing import FakeCometAPI

    return FakeCometAPI()


@pytest.fixture
async def _cometrunway_fake_for_anyio() -> AsyncIterator[FakeCometAPI]:
    async with _new_fake() as server:
        yield server


def _asyncio_fixture() -> Callable[[Callable[..., Any]], object]:
    """``pytest_asyncio.fixture`` when pytest-asyncio is installed, else ``pytest.fixture``."""
    try:
        import pytest_asyncio
    except ImportError:  # no pytest-asyncio: a plain async fixture, for whatever runs it
        return pytest.fixture
    return pytest_asyncio.fixture


@_asyncio_fixture()
async def _cometrunway_fake_for_asyncio() -> AsyncIterator[FakeCometAPI]:
    async with _new_fake() as server:
        yield server


@pytest.fixture
def fake_cometapi(request: pytest.FixtureRequest) -> FakeCometAPI:
    """A started ``FakeCometAPI`` on 127.0.0.1, on the test's event loop, closed after it."""
    if _ANYIO_BACKEND in request.fixturenames:
        backend = request.getfixturevalue(_ANYIO_BACKEND)
        name = backend if isinstance(backend, str) else backend[0]
        if name != "asyncio":
            pytest.fail(
                f"fake_cometapi needs the asyncio backend (aiohttp serves it), but this test "
                f"runs on anyio_backend={name!r}: parametrize anyio_backend with 'asyncio'",
                pytrace=False,
            )
        server: FakeCometAPI = request.getfixturevalue("_cometrunway_fake_for_anyio")
    else:
        server = request.getfixturevalue("_cometrunway_fake_for_asyncio")
    return server
