"""The one I/O seam: ``send(HTTPRequest) -> HTTPResponse`` and ``aclose()``.

``Transport`` is the protocol the client talks to; any object with those two methods can be
passed as ``Client(transport=...)`` (``cometrunway.testing.MockTransport`` answers from a
function in memory). ``AiohttpTransport`` is the default: it borrows a ``ClientSession`` it
is given or owns one it creates (honouring ``HTTP(S)_PROXY`` with ``trust_env``), and closes
only what it created. It makes exactly one attempt per call and maps every aiohttp failure to
``TransportError``, saying whether the request may have reached the server
(``request_sent``): a connect or DNS failure certainly did not; a read timeout or a dropped
connection may have. What to do about it is the pure core's call (``protocol``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, runtime_checkable

import aiohttp
from aiohttp.helpers import BasicAuth, get_env_proxy_for_url
from yarl import URL

from .errors import ClientStateError, TransportError
from .protocol import HTTPRequest, HTTPResponse

__all__ = ["DEFAULT_TIMEOUT", "MAX_BODY_BYTES", "AiohttpTransport", "Transport"]

log: logging.Logger = logging.getLogger("cometrunway.transport")

# Connects fail fast; a whole exchange is allowed 75 s (creates can take a while to ack).
# One deadline per request: API answers are small enough for a total to say it all.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=75, connect=15, sock_connect=15)
# API answers are small JSON; a bigger body is a wrong URL or an attack, not a task.
MAX_BODY_BYTES = 8 * 1024 * 1024
# Connections per host the owned session keeps: far above what 50 requests/s needs.
DEFAULT_CONNECTION_LIMIT = 100
_READ_CHUNK = 64 * 1024


@runtime_checkable
class Transport(Protocol):
    """What the client needs from HTTP: one attempt per ``send``, and ``aclose`` at exit.

    ``send`` raises ``TransportError`` (with ``request_sent``) when there is no answer.
    """

    async def send(self, request: HTTPRequest) -> HTTPResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """Sends ``HTTPRequest`` values to ``base_url`` over aiohttp.

    * ``session`` — a ``ClientSession`` to borrow (never closed here); None: one is created
      on first use and closed by ``aclose()``.
    * ``timeout`` — an ``aiohttp.ClientTimeout`` per request.
    * ``trust_env`` — requests go through the proxy ``HTTP(S)_PROXY``/``NO_PROXY`` name
      for ``base_url``, as users expect from other HTTP clients. It is looked up once, when
      the owned session opens: aiohttp's own ``trust_env`` looks it up (and ``.netrc``) in
      a thread on every request, which cost several times the rest of a request's CPU.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        trust_env: bool = True,
        connection_limit: int = DEFAULT_CONNECTION_LIMIT,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None
        self._timeout = timeout
        self._trust_env = trust_env
        self._connection_limit = connection_limit
        self._closed = False
        self._proxy: URL | None = None
        self._proxy_auth: BasicAuth | None = None
        self._opening: asyncio.Lock | None = None  # first sends at once open one session

    @property
    def base_url(self) -> str:
        return self._base_url

    async def open(self) -> None:
        """Create the owned session now (``send`` does it on first use otherwise)."""
        if self._closed:
            raise ClientStateError("this transport was closed; create a new one")
        if self._session is not None:
            return
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:  # another first send may have opened it meanwhile
            if self._session is None and not self._closed:
                await self._create_session()

    async def _create_session(self) -> None:
        if self._trust_env:
            # The environment (and urllib's proxy settings) may read files: off the loop.
            self._proxy, self._proxy_auth = await asyncio.to_thread(_env_proxy, URL(self._base_url))
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            connector=aiohttp.TCPConnector(limit=self._connection_limit),
        )

    async def aclose(self) -> None:
        """Close the session if this transport created it; a borrowed one stays open."""
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    close = aclose

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """One attempt. Raises ``TransportError`` when there is no usable answer."""
        if self._closed:
            raise ClientStateError("the transport is not open: it was closed")
        if self._session is None:
            await self.open()
        session = self._session
        if session is None:
            raise ClientStateError("the transport is not open: it was closed")
        url = self._base_url + request.path
        sent = False
        try:
            async with session.request(
                request.method,
                url,
                data=request.body,
                headers=request.headers,
                allow_redirects=False,
                timeout=self._timeout,
                proxy=self._proxy,
                proxy_auth=self._proxy_auth,
            ) as response:
                sent = True
                body = await _read_capped(response, request)
                return HTTPResponse(response.status, response.headers.items(), body)
        except TransportError:
            raise
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection never came up: the request certainly did not leave.
            raise TransportError(
                f"{request.method} {request.path}: cannot connect to {self._base_url}: {exc}",
                request_sent=False,
            ) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransportError(
                f"{request.method} {request.path} {_what_failed(exc)}"
                + (" after the answer began" if sent else "; it may have reached the server"),
                request_sent=True,
            ) from None  # aiohttp's error carries our request headers (the key) in its repr


def _what_failed(exc: BaseException) -> str:
    """What went wrong, in words that never include the request's headers: aiohttp's
    ``ClientResponseError`` repr shows ``request_info`` (the ``Authorization`` header)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientResponseError):
        detail = " ".join(str(exc.message).split())
        return f"failed: {type(exc).__name__} (status {exc.status}): {detail}"
    return f"failed: {type(exc).__name__}: {exc}"


def _env_proxy(url: URL) -> tuple[URL | None, BasicAuth | None]:
    """The proxy the environment names for ``url`` (honouring ``NO_PROXY``), or none."""
    try:
        return get_env_proxy_for_url(url)
    except LookupError:
        return None, None


async def _read_capped(response: aiohttp.ClientResponse, request: HTTPRequest) -> bytes:
    length = response.content_length
    if length is not None and length <= MAX_BODY_BYTES:
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TransportError(
                f"{request.method} {request.path}: answer larger than {MAX_BODY_BYTES} bytes",
                request_sent=True,
            )
        chunks.append(chunk)
    return b"".join(chunks)
