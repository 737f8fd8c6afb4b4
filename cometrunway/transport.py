"""The one I/O seam: ``send(HTTPRequest) -> HTTPResponse`` over an aiohttp session.

The transport borrows a ``ClientSession`` it is given or owns one it creates, and closes
only what it created. It makes exactly one attempt per call and maps every aiohttp failure to
``TransportError``, saying whether the request may have reached the server
(``request_sent``): a connect or DNS failure certainly did not; a read timeout or a dropped
connection may have. What to do about it is the pure core's call (``protocol``). Given the
client's ``RequestBudget``, every request waits for its slot and every answer feeds it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp

from .budget import RequestBudget
from .errors import ClientStateError, TransportError
from .protocol import HTTPRequest, HTTPResponse

__all__ = ["DEFAULT_TIMEOUT", "MAX_BODY_BYTES", "Transport"]

log = logging.getLogger("cometrunway.transport")

# Connects fail fast; a whole exchange is allowed 75 s (creates can take a while to ack).
# One deadline per request: a per-read timeout (sock_read) costs aiohttp a timer reschedule
# on every chunk, and API answers are small enough for a total to say the same thing.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=75, connect=15, sock_connect=15)
# API answers are small JSON; a bigger body is a wrong URL or an attack, not a task.
MAX_BODY_BYTES = 8 * 1024 * 1024

Sender = Callable[[HTTPRequest], Awaitable[HTTPResponse]]


class Transport:
    """Sends ``HTTPRequest`` values to ``base_url`` and returns ``HTTPResponse`` values."""

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        connection_limit: int = 100,
        budget: RequestBudget | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._budget = budget
        self._session = session
        self._owns_session = session is None
        self._timeout = timeout
        self._connection_limit = connection_limit
        self._closed = False

    @property
    def base_url(self) -> str:
        return self._base_url

    async def open(self) -> None:
        if self._closed:
            raise ClientStateError("this transport was closed; create a new one")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._connection_limit),
            )

    async def close(self) -> None:
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """One attempt. Raises ``TransportError`` when there is no usable answer."""
        session = self._session
        if session is None:
            raise ClientStateError("the transport is not open")
        budget = self._budget
        if budget is not None:
            await budget.acquire()
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
            ) as response:
                sent = True
                length = response.content_length
                if length is not None and length <= MAX_BODY_BYTES:
                    body = await response.read()  # the usual case: a small, sized answer
                else:
                    body = await _read_capped(response, request)
                answer = HTTPResponse(response.status, response.headers.items(), body)
        except TransportError:
            raise
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection never came up: the request certainly did not leave.
            raise TransportError(
                f"{request.method} {request.path}: cannot connect to {self._base_url}: {exc}",
                request_sent=False,
            ) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else f"failed: {exc!r}"
            raise TransportError(
                f"{request.method} {request.path} {what}"
                + (" after the answer began" if sent else "; it may have reached the server"),
                request_sent=True,
            ) from exc
        if budget is not None:
            budget.observe(answer)
        return answer


async def _read_capped(response: aiohttp.ClientResponse, request: HTTPRequest) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TransportError(
                f"{request.method} {request.path}: answer larger than {MAX_BODY_BYTES} bytes",
                request_sent=True,
            )
        chunks.append(chunk)
    return b"".join(chunks)
