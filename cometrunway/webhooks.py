"""Receiving CometAPI's task callbacks, and turning each one into an early poll.

CometAPI posts a ``/runway/pro/*`` task's result to its ``callback_url`` (see :doc:`/quirks`).
Nothing about those posts is signed or documented beyond that, so this module treats a
callback as a *hint*: it checks the secret ``token`` the client put in its callback URL,
reads the task id, and calls ``client.wake(task_id)``. The poller then confirms with a real
poll; a handle is never resolved from a callback body, which anyone who learned the URL
could forge, and whose shape is not even settled (§4, §6 C13).

* ``CallbackReceiver`` is the framework-agnostic core: ``handle(body, query, headers)``
  returns a ``CallbackVerdict`` (HTTP status, message, task id, duplicate flag) and never
  raises for bad input. ``statistics()`` counts what it saw.
* ``aiohttp_app(client)`` (also ``Client.callback_app()``) is a ready aiohttp application.
* ``starlette_endpoint(client)`` is an endpoint for Starlette or FastAPI; Starlette is
  imported only when it is called, so it is not a dependency of this package.

Accepted payloads: the upstream F3 ``data`` record (``task_id`` and a digit ``status``), the
CometAPI wrapper record (F1 ``data``, ``task_id`` and a status word), a bare Runway task
(``id``, ``status``, ``output``), and any of those inside a ``{"code": ..., "data": {...}}``
envelope.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web
from attrs import frozen

from ._access_log import RedactingAccessLogger

__all__ = [
    "DEFAULT_CALLBACK_PATH",
    "DEFAULT_MAX_BODY_BYTES",
    "RECEIVER_KEY",
    "REJECT_REASONS",
    "CallbackReceiver",
    "CallbackVerdict",
    "ReceiverStatistics",
    "RedactingAccessLogger",
    "aiohttp_app",
    "aiohttp_handler",
    "starlette_endpoint",
]

log: logging.Logger = logging.getLogger("cometrunway.webhooks")

DEFAULT_CALLBACK_PATH = "/runway/callback"
# A callback record is well under 2 KiB (§1.5 F3); a quarter MiB leaves room for any
# wrapper while keeping a flood of large bodies cheap to refuse.
DEFAULT_MAX_BODY_BYTES = 256 * 1024
# How many (task id, status) pairs are remembered to recognise repeated posts.
_REMEMBERED = 65_536
_WARN_EVERY = 60.0  # seconds between warnings about forged tokens
# Task ids are UUIDs; anything else in the id field is refused rather than logged verbatim.
_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

REJECT_REASONS = (
    "token_missing",
    "token_invalid",
    "too_large",
    "not_json",
    "bad_shape",
    "error",
)


class Wakeable(Protocol):
    """What the receiver needs from a client (``Client`` is one)."""

    @property
    def callback_token(self) -> str: ...

    def wake(self, task_id: str) -> bool: ...


@frozen
class CallbackVerdict:
    """What the receiver made of one delivery.

    ``status`` is the HTTP status to answer (200 woken, 202 unknown task, 400/401/413
    refused, 500 a bug of ours); ``task_id`` is None when the delivery was refused;
    ``duplicate`` is True when this task id and status were seen before.
    """

    status: int
    message: str
    task_id: str | None = None
    duplicate: bool = False
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        """True for a delivery that named a task (known or not)."""
        return self.status < 300

    def as_json(self) -> dict[str, Any]:
        """The answer body adapters send."""
        body: dict[str, Any] = {"ok": self.accepted, "message": self.message}
        if self.task_id is not None:
            body["task_id"] = self.task_id
            body["duplicate"] = self.duplicate
        return body


@frozen
class ReceiverStatistics:
    """Counts since the receiver was made.

    Every delivery is counted once in ``received`` and exactly once in ``accepted``,
    ``unknown`` or ``rejected`` (by reason, see ``REJECT_REASONS``); ``duplicates`` is the
    part of ``accepted`` that repeated an earlier post.
    """

    received: int
    accepted: int
    duplicates: int
    unknown: int
    rejected: Mapping[str, int]

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class _BadShape(Exception):
    pass


def _record_of(payload: Any) -> tuple[str, str | None]:
    """(task id, status word) from any accepted payload shape; ``_BadShape`` otherwise."""
    record = payload
    for _ in range(3):  # the record itself, or one or two envelopes around it
        if not isinstance(record, dict):
            break
        task_id = record.get("task_id")
        if task_id is None and "status" in record:
            task_id = record.get("id")  # bare Runway task (§1.10 T1)
        if task_id is not None:
            if not isinstance(task_id, str) or not _TASK_ID.match(task_id):
                raise _BadShape("task_id is not a task id")
            status = record.get("status")
            if isinstance(status, bool) or not isinstance(status, str | int | None):
                raise _BadShape("status is not a status word")
            return task_id, None if status is None else str(status)
        record = record.get("data")  # {"code": ..., "data": {...}} envelopes (§1.5)
    raise _BadShape("no task_id in the payload")


def _declared_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Content-Length") or headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


class CallbackReceiver:
    """Checks callback deliveries and wakes the client's poller for each task they name.

    ``client`` is a ``Client`` (or anything with ``callback_token`` and ``wake``).
    Deliveries bigger than ``max_body_bytes`` are refused with 413. The receiver is
    synchronous and cheap; one instance may serve any number of concurrent requests on
    the client's event loop.
    """

    def __init__(self, client: Wakeable, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
            raise TypeError(f"max_body_bytes must be an int, got {max_body_bytes!r}")
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be ≥ 1, got {max_body_bytes}")
        self._client = client
        self.max_body_bytes = max_body_bytes
        self._seen: OrderedDict[tuple[str, str | None], None] = OrderedDict()
        self._accepted_ids: OrderedDict[str, None] = OrderedDict()
        self._counts = Counter[str]()
        self._rejected = Counter[str]()
        self._last_warning: float | None = None
        self._warned_count = 0

    def statistics(self) -> ReceiverStatistics:
        return ReceiverStatistics(
            received=self._counts["received"],
            accepted=self._counts["accepted"],
            duplicates=self._counts["duplicates"],
            unknown=self._counts["unknown"],
            rejected={reason: self._rejected[reason] for reason in REJECT_REASONS},
        )

    def handle(
        self, body: bytes, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> CallbackVerdict:
        """Judge one delivery and wake its task. Never raises.

        ``query`` holds the URL's query parameters (``token`` is checked in constant time),
        ``headers`` the request headers (a declared ``Content-Length`` over the cap is
        refused even when the adapter did not read the body).
        """
        self._counts["received"] += 1
        try:
            return self._judge(body, query, headers)
        except Exception:  # a bug here must not take the web server down with it
            log.exception("callback receiver failed on a delivery")
            return self._reject(500, "error", "internal error in the callback receiver")

    def _reject(self, status: int, reason: str, message: str) -> CallbackVerdict:
        self._rejected[reason] += 1
        return CallbackVerdict(status, message, reason=reason)

    def _judge(
        self, body: bytes, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> CallbackVerdict:
        # Authenticate first, so a stranger learns nothing about what would be accepted.
        token = query.get("token")
        if not token:
            return self._reject(401, "token_missing", "missing token")
        expected = self._client.callback_token
        if not hmac.compare_digest(token.encode("utf-8", "replace"), expected.encode()):
            self._warn_forged()
            return self._reject(401, "token_invalid", "invalid token")
        declared = _declared_length(headers)
        if len(body) > self.max_body_bytes or (
            declared is not None and declared > self.max_body_bytes
        ):
            return self._reject(413, "too_large", f"body over {self.max_body_bytes} bytes")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return self._reject(400, "not_json", "body is not JSON")
        try:
            task_id, status = _record_of(payload)
        except _BadShape as exc:
            return self._reject(400, "bad_shape", str(exc))
        except RecursionError:
            return self._reject(400, "bad_shape", "payload nested too deeply")

        key = (task_id, status)
        duplicate = key in self._seen
        _remember(self._seen, key)
        # A repeated post still wakes the task: harmless (at most one extra poll), and it
        # covers a first post that arrived while a poll was already on its way back.
        if self._client.wake(task_id):
            _remember(self._accepted_ids, task_id)
            return self._accept(task_id, status, duplicate, "woken: the poller will confirm")
        if task_id in self._accepted_ids:
            # Woken earlier and finished since: the poller no longer follows it.
            return self._accept(task_id, status, duplicate, "already finished")
        self._counts["unknown"] += 1
        log.info(
            "callback for task %s (status %r) that this client does not follow", task_id, status
        )
        return CallbackVerdict(
            202,
            "task not followed by this client (unknown or already finished); ignored",
            task_id,
            duplicate,
        )

    def _warn_forged(self) -> None:
        # Worth a warning (a forger, or posts meant for another client instance whose token
        # differs), but at most once a minute: a flood of forgeries must not flood the log.
        now = time.monotonic()
        if self._last_warning is None or now - self._last_warning >= _WARN_EVERY:
            refused = self._rejected["token_invalid"] + 1 - self._warned_count
            log.warning("callback(s) refused for a wrong token: %d since the last warning", refused)
            self._last_warning = now
            self._warned_count = self._rejected["token_invalid"] + 1

    def _accept(
        self, task_id: str, status: str | None, duplicate: bool, message: str
    ) -> CallbackVerdict:
        self._counts["accepted"] += 1
        if duplicate:
            self._counts["duplicates"] += 1
        log.debug("callback for task %s (status %r): %s", task_id, status, message)
        return CallbackVerdict(200, message, task_id, duplicate)


def _remember(store: OrderedDict[Any, None], key: Any) -> None:
    store[key] = None
    store.move_to_end(key)
    if len(store) > _REMEMBERED:
        store.popitem(last=False)


# ---------------------------------------------------------------- aiohttp

RECEIVER_KEY = web.AppKey("cometrunway_callback_receiver", CallbackReceiver)
"""Where ``aiohttp_app`` keeps its receiver: ``app[RECEIVER_KEY].statistics()``."""


async def _read_capped_stream(chunks: Any, limit: int) -> bytes:
    """Read at most ``limit + 1`` bytes: enough to know the body is too big."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            break
    return bytes(body)


def aiohttp_handler(
    receiver: CallbackReceiver,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp request handler for ``receiver``: mount it on a POST route of your app."""

    async def receive(request: web.Request) -> web.StreamResponse:
        limit = receiver.max_body_bytes
        declared = request.content_length
        body = b""
        if declared is None or declared <= limit:
            # Read no further than the cap: a huge body is refused, never buffered.
            body = await _read_capped_stream(request.content.iter_any(), limit)
        verdict = receiver.handle(body, request.query, request.headers)
        return web.json_response(verdict.as_json(), status=verdict.status)

    return receive


def aiohttp_app(
    client: Wakeable,
    *,
    path: str = DEFAULT_CALLBACK_PATH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> web.Application:
    """An aiohttp application that receives callbacks on ``POST path``.

    Run it on its own (``web.AppRunner(app, access_log_class=RedactingAccessLogger)``: the
    default access log would write the callback token) or mount it in yours with
    ``add_subapp``. The receiver is ``app[RECEIVER_KEY]`` (for ``statistics()``). The
    client's ``callback_url`` must point at this path; it carries the token the receiver
    checks.
    """
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', got {path!r}")
    receiver = CallbackReceiver(client, max_body_bytes=max_body_bytes)
    # aiohttp's own cap stays above ours, so the receiver is the one that answers 413.
    app = web.Application(client_max_size=max_body_bytes + 1024)
    app[RECEIVER_KEY] = receiver
    app.router.add_post(path, aiohttp_handler(receiver))
    return app


# ---------------------------------------------------------------- Starlette / FastAPI


def starlette_endpoint(
    client: Wakeable | CallbackReceiver,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Callable[[Any], Awaitable[Any]]:
    """An ``async (request) -> Response`` endpoint for Starlette or FastAPI.

    Starlette::

        from starlette.routing import Route
        routes = [Route("/runway/callback", starlette_endpoint(client), methods=["POST"])]

    FastAPI::

        app.add_api_route("/runway/callback", starlette_endpoint(client), methods=["POST"])

    Pass a ``CallbackReceiver`` instead of the client to keep its ``statistics()`` at hand;
    the endpoint also exposes it as ``endpoint.receiver``. Starlette is imported here, when
    the endpoint is made: it is not a dependency of cometrunway.
    """
    from starlette.requests import Request  # type: ignore[import-not-found, unused-ignore]
    from starlette.responses import (  # type: ignore[import-not-found, unused-ignore]
        JSONResponse,
        Response,
    )

    receiver = (
        client
        if isinstance(client, CallbackReceiver)
        else CallbackReceiver(client, max_body_bytes=max_body_bytes)
    )

    async def endpoint(request: Request) -> Response:
        limit = receiver.max_body_bytes
        declared = _declared_length(request.headers)
        body = b""
        if declared is None or declared <= limit:
            body = await _read_capped_stream(request.stream(), limit)
        verdict = receiver.handle(body, request.query_params, request.headers)
        return JSONResponse(verdict.as_json(), status_code=verdict.status)

    # FastAPI reads the signature to inject the request: give it the real classes, not
    # the strings postponed annotations leave behind (Starlette is not importable there).
    endpoint.__annotations__ = {"request": Request, "return": Response}
    endpoint.receiver = receiver  # type: ignore[attr-defined]
    return endpoint
