"""Where the promise "never leak the key" is kept for everything the API sends back.

The protocol builds the only ``Authorization`` header and ``HTTPRequest``'s repr hides it.
What remains is the way back: a broken or hostile server can echo the key in a body or a
header, and an HTTP library's own error can carry the request headers in its repr. Every API
request of the client goes through one ``KeyGuard`` (below the rate budget, above any
transport, the user's own included), so no answer that reaches the parser, the journal, a
log line or an exception can hold the key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .protocol import HTTPRequest, HTTPResponse, redact_answer, redact_text

__all__ = ["KeyGuard"]

#: Keys shorter than this are test placeholders ("k", "key"), never CometAPI keys (``sk-``
#: and 48 characters): replacing every "k" in every answer would corrupt what it guards.
MIN_SECRET_LENGTH = 8

Send = Callable[[HTTPRequest], Awaitable[HTTPResponse]]


def _mentions(error: BaseException, secret: str) -> bool:
    try:
        return secret in str(error) or secret in repr(error)
    except Exception:  # a broken __repr__ must not hide the real failure
        return True


class KeyGuard:
    """Sends through ``send``; the key never comes back in what it returns or raises."""

    def __init__(self, send: Send, secret: str) -> None:
        self._send = send
        self._secret = secret if len(secret) >= MIN_SECRET_LENGTH else ""

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        secret = self._secret
        try:
            response = await self._send(request)
        except Exception as exc:
            if secret and _mentions(exc, secret):
                exc.args = tuple(
                    redact_text(arg, secret) if isinstance(arg, str) else arg for arg in exc.args
                )
            cause = exc.__cause__ or exc.__context__
            if secret and cause is not None and _mentions(cause, secret):
                # The transport's own error (aiohttp's repr carries the request headers):
                # the message above already says what went wrong.
                exc.__cause__ = None
                exc.__suppress_context__ = True
                exc.__context__ = None
            raise
        return redact_answer(response, secret)
