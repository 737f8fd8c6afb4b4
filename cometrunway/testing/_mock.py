"""``MockTransport``: a transport that answers from a function, in memory.

For tests of the client and of users' code without sockets::

    def handler(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(200, {"content-type": "application/json"}, b'{"id": "t1"}')

    async with Client("key", transport=MockTransport(handler)) as client: ...

The handler may be sync or async; what it raises reaches the client as a transport would
raise it (raise ``TransportError(..., request_sent=False)`` to play a refused connection).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from ..errors import ClientStateError
from ..protocol import HTTPRequest, HTTPResponse

__all__ = ["Handler", "MockTransport"]

Handler = Callable[[HTTPRequest], HTTPResponse | Awaitable[HTTPResponse]]


class MockTransport:
    """Answers every ``send`` with ``handler(request)``; records what it was sent."""

    def __init__(self, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(
                f"MockTransport takes a function HTTPRequest -> HTTPResponse, got {handler!r}"
            )
        self._handler = handler
        self.requests: list[HTTPRequest] = []
        self.closed: bool = False

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        if self.closed:
            raise ClientStateError("this MockTransport was closed")
        self.requests.append(request)
        answer = self._handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if not isinstance(answer, HTTPResponse):
            raise TypeError(
                f"the MockTransport handler must return an HTTPResponse, got {answer!r}"
            )
        return answer

    async def aclose(self) -> None:
        self.closed = True
