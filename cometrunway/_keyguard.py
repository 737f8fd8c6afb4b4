"""Where the promise "never leak the key" is kept for everything the API sends back.

The protocol builds the only ``Authorization`` header and ``HTTPRequest``'s repr hides it.
What remains is the way back: a broken or hostile server can echo the key in a body or a
header, and an HTTP library's own error can carry the request headers in its repr. Every API
request of the client goes through one ``KeyGuard`` (below the rate budget, above any
transport, the user's own included), so no answer that reaches the parser, the journal, a
log line or an exception can hold the key.

Downloads never carry the key (their session has no credentials), but an output host is
chosen by the server and may quote the key all the same (one that learned it, or a
malformed answer that aiohttp quotes in its error): the client runs them under
``KeyGuard.scrubbing()``, which takes the key out of whatever error comes back.

The guard keeps the callback token out as well (a server may quote the ``callback_url``),
and the package's loggers pass every record through one filter that removes the secrets of
every live guard: text quoted from a host on its way to a log line (a download retried, a
callback's fields) never carries them either.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType

from .protocol import REDACTED, HTTPRequest, HTTPResponse, redact_answer, redact_text

__all__ = ["KeyGuard"]

#: Keys shorter than this are test placeholders ("k", "key"), never CometAPI keys (``sk-``
#: and 48 characters): replacing every "k" in every answer would corrupt what it guards.
MIN_SECRET_LENGTH = 8

Send = Callable[[HTTPRequest], Awaitable[HTTPResponse]]

#: The package's loggers: each record they create goes through ``_LOG_SCRUBBER``. (A
#: logger's filters see only the records created on it, not its children's.)
PACKAGE_LOGGERS = (
    "cometrunway",
    "cometrunway.cli",
    "cometrunway.download",
    "cometrunway.events",
    "cometrunway.journal",
    "cometrunway.poller",
    "cometrunway.transport",
    "cometrunway.webhooks",
)


def _mentions(error: BaseException, secret: str) -> bool:
    try:
        return secret in str(error) or secret in repr(error)
    except Exception:  # a broken __repr__ must not hide the real failure
        return True


def _redacted(value: object, secret: str) -> object:
    """``value`` without the key when it is text or bytes; anything else as it is."""
    if isinstance(value, str):
        return redact_text(value, secret)
    if isinstance(value, bytes) and secret.encode() in value:
        return value.replace(secret.encode(), REDACTED.encode())
    return value


def _scrub(error: BaseException, secret: str, seen: set[int]) -> None:
    if id(error) in seen:
        return
    seen.add(id(error))
    error.args = tuple(_redacted(arg, secret) for arg in error.args)
    notes = getattr(error, "__notes__", None)
    if isinstance(notes, list):
        error.__notes__ = [redact_text(n, secret) if isinstance(n, str) else n for n in notes]
    for name, value in list(getattr(error, "__dict__", {}).items()):
        clean = _redacted(value, secret)
        if clean is not value:
            with contextlib.suppress(AttributeError):  # a read-only property
                setattr(error, name, clean)
    for member in getattr(error, "exceptions", ()):
        if isinstance(member, BaseException):
            _scrub(member, secret, seen)
    for linked in (error.__cause__, error.__context__):
        if linked is not None:
            _scrub(linked, secret, seen)
    linked = error.__cause__ or error.__context__
    if linked is not None and _mentions(linked, secret):
        # A library's own error (aiohttp's repr carries the request headers): the message
        # of ``error`` already says what went wrong.
        error.__cause__ = None
        error.__suppress_context__ = True
        error.__context__ = None


class KeyGuard:
    """Sends through ``send``; the key (and the ``also`` secrets, such as the callback
    token) never comes back in what it returns or raises, nor in the package's logs."""

    def __init__(self, send: Send, secret: str, *, also: Iterable[str] = ()) -> None:
        self._send = send
        self._secrets = tuple(s for s in (secret, *also) if len(s) >= MIN_SECRET_LENGTH)
        self._scrubbing = _Scrubbing(self)
        _LIVE.add(self)

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        with self._scrubbing:
            response = await self._send(request)
        return redact_answer(response, *self._secrets)

    def redact(self, text: str) -> str:
        """``text`` without any of the secrets."""
        for secret in self._secrets:
            text = redact_text(text, secret)
        return text

    def scrub(self, error: BaseException) -> None:
        """Take the secrets out of ``error`` in place: its args, notes and text or bytes
        attributes, and the same for each grouped and chained error; a chained error that
        still mentions one after that is cut from the chain."""
        for secret in self._secrets:
            _scrub(error, secret, set())

    def scrubbing(self) -> contextlib.AbstractContextManager[None]:
        """Whatever error leaves the block, it leaves without the secrets."""
        return self._scrubbing


class _Scrubbing:
    """``KeyGuard.scrubbing()``: a plain context manager, entered on every request."""

    __slots__ = ("_guard",)

    def __init__(self, guard: KeyGuard) -> None:
        self._guard = guard

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, Exception):
            self._guard.scrub(exc)  # the error goes on, without the secrets


#: Every guard alive (one per client): the log filter removes the secrets of each.
_LIVE: weakref.WeakSet[KeyGuard] = weakref.WeakSet()


class _LogScrubber(logging.Filter):
    """Removes every live guard's secrets from a record's message and exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        guards = list(_LIVE)
        if not guards:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: logging reports it, with nothing to redact
            return True
        clean = message
        for guard in guards:
            clean = guard.redact(clean)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            for guard in guards:
                guard.scrub(record.exc_info[1])
        return True


_LOG_SCRUBBER = _LogScrubber()
for _name in PACKAGE_LOGGERS:
    logging.getLogger(_name).addFilter(_LOG_SCRUBBER)
