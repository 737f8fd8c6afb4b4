"""A fake CometAPI for tests: every Runway route, in-process, on 127.0.0.1.

``FakeCometAPI`` is a real aiohttp server that answers like CometAPI's Runway routes as their
docs describe them (the "CometAPI quirks" page lists every variant), so a client, a batch
pipeline or a webhook receiver can be tested end to end without the network or money::

    from cometrunway import Client, TextToVideo
    from cometrunway.testing import FakeCometAPI, Fault, Lifecycle

    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(queued=1, running=2)) as fake:
        async with Client("any-key", base_url=fake.url) as client:
            fake.inject("submit", Fault.server_error(500, after_create=True))
            ...

What it gives a test:

* every create, poll, cancel and output route, in every documented envelope variant
  (create A1/A2/A3 and ``{"id"}``, feed F1/F2/F3, tasks T1/T2), chosen per instance and
  changeable while it runs;
* scripted task lives (``Lifecycle``): by poll count (deterministic, no sleeping) and/or by
  the fake's clock (injectable), succeeding, failing or cancelled, with a ``task_not_exist``
  window after the create;
* faults (``Fault``) queued per kind of route: 429 with or without ``Retry-After``, 5xx
  before or after the task is created, dropped connections, slow answers, garbage, HTML;
* records of every request, task and callback, for assertions;
* callbacks posted to ``/runway/pro/*`` tasks' ``callback_url`` (loopback hosts only by
  default), and ``/cdn/...`` output files with deterministic bytes and ``Range`` support.

``python -m cometrunway.testing --port 8080`` runs it in its own process: it prints its URL on
one line and serves until SIGINT or SIGTERM; ``GET /_fake/tasks`` then lists the tasks it
created, for counting on the server's side. Nothing in the package imports this module.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import heapq
import ipaddress
import json
import signal
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import IntEnum
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeAlias, TypeVar, overload

import aiohttp
import attrs
from aiohttp import web
from attrs import define, field, frozen
from yarl import URL

from ._mock_transport import MockTransport
from .models import TaskStatus

__all__ = [
    "CallbackRecord",
    "FakeCometAPI",
    "Fault",
    "Lifecycle",
    "MockTransport",
    "RecordedRequest",
    "TaskRecord",
    "main",
]

Outcome: TypeAlias = Literal["succeed", "fail", "cancel"]
RouteKind: TypeAlias = Literal["submit", "poll", "cancel", "cdn"]
CreateEnvelope: TypeAlias = Literal["A1", "A2", "A3"]
FeedEnvelope: TypeAlias = Literal["F1", "F2", "F3"]
TasksEnvelope: TypeAlias = Literal["T1", "T2"]
CallbackFormat: TypeAlias = Literal["F3", "F1"]

_T = TypeVar("_T")


# ---------------------------------------------------------------- lifecycles


def _non_negative(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"Lifecycle.{attribute.name} must be a number >= 0, got {value!r}")


@frozen
class Lifecycle:
    """How one fake task lives, from create to its end.

    A task is queued, then running, then done with ``outcome``. Each phase ends when BOTH
    of its limits are reached: ``queued_for`` seconds of the fake's clock since the create
    AND ``queued_polls`` answered polls; then ``running_for`` more seconds AND
    ``running_polls`` more answered polls. All zeros (the default) means the task is done
    on its first poll.

    For the first ``not_found_polls`` polls, and for ``not_found_for`` seconds after the
    create, polls answer ``task_not_exist`` (wire reference §1.5, §3.1); those polls do not
    count as answered. ``fail_reason``/``failure_code`` describe a ``"fail"`` outcome;
    ``queued_word`` is the wrapper status word while queued (``QUEUED``, ``NOT_START`` or
    ``SUBMITTED``, §2).
    """

    queued_for: float = field(default=0.0, validator=_non_negative)
    running_for: float = field(default=0.0, validator=_non_negative)
    queued_polls: int = field(default=0, validator=_non_negative)
    running_polls: int = field(default=0, validator=_non_negative)
    not_found_polls: int = field(default=0, validator=_non_negative)
    not_found_for: float = field(default=0.0, validator=_non_negative)
    outcome: Outcome = field(
        default="succeed", validator=attrs.validators.in_(("succeed", "fail", "cancel"))
    )
    fail_reason: str = "The generation failed."
    failure_code: str = "INTERNAL.BAD_OUTPUT.CODE01"
    queued_word: str = field(
        default="QUEUED", validator=attrs.validators.in_(("QUEUED", "NOT_START", "SUBMITTED"))
    )

    @classmethod
    def instant(cls, **options: Any) -> Lifecycle:
        """Done on the first poll (zero latency, for benchmarks)."""
        return cls(**options)

    @classmethod
    def by_polls(cls, queued: int = 1, running: int = 2, **options: Any) -> Lifecycle:
        """``queued`` polls answer queued, the next ``running`` answer running, then done."""
        return cls(queued_polls=queued, running_polls=running, **options)

    @classmethod
    def by_time(cls, queued: float = 1.0, running: float = 4.0, **options: Any) -> Lifecycle:
        """Queued for ``queued`` seconds of the fake's clock, running ``running`` more."""
        return cls(queued_for=queued, running_for=running, **options)

    def failing(
        self, reason: str = "The generation failed.", code: str = "INTERNAL.BAD_OUTPUT.CODE01"
    ) -> Lifecycle:
        """The same life, ending FAILED with ``reason`` and ``code``, e.g. SAFETY.INPUT.TEXT."""
        return attrs.evolve(self, outcome="fail", fail_reason=reason, failure_code=code)

    def cancelled(self) -> Lifecycle:
        """The same life, ending CANCELLED."""
        return attrs.evolve(self, outcome="cancel")


LifecycleHook: TypeAlias = Mapping[str, Lifecycle] | Callable[[Mapping[str, Any]], Lifecycle | None]


class _Phase(IntEnum):
    QUEUED = 0
    RUNNING = 1
    DONE = 2


# ---------------------------------------------------------------- faults


def _platform_error(message: str, code: str = "") -> bytes:
    # The platform error envelope (wire reference §3.2); `code` may be empty.
    error = {"message": message, "type": "comet_api_error", "param": "", "code": code}
    return _dumps({"error": error})


_JSON = "application/json"
_HTML = "text/html; charset=utf-8"
_HTML_404 = (
    "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>\n"
    "<center><h1>404 Not Found</h1></center><hr><center>nginx</center>\n</body></html>\n"
)


@frozen
class Fault:
    """One misbehaviour, queued with ``FakeCometAPI.inject(kind, fault, times)``.

    Build it with a constructor below. A fault answers instead of the fake (before anything
    happens) unless ``after_create`` is set: then the request is processed first (a create
    makes its task, a poll counts and advances the task) and the fault replaces the answer.
    A request refused anyway (auth, validation) is answered with its refusal. ``wait``
    is seconds to sleep first (see ``delay``).
    """

    action: Literal["respond", "drop", "drop_mid_body", "pass"]
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    after_create: bool = False
    wait: float = 0.0
    fraction: float = 0.5

    @classmethod
    def response(
        cls,
        status: int,
        body: bytes | str | Mapping[str, Any] | None = None,
        *,
        content_type: str = _JSON,
        headers: Mapping[str, str] | None = None,
        after_create: bool = False,
    ) -> Fault:
        """Any answer: ``body`` as bytes, text, or a mapping sent as JSON.

        E.g. the older official create answer ``{}`` (§6 C11):
        ``Fault.response(200, {}, after_create=True)``.
        """
        if isinstance(body, Mapping):
            raw = _dumps(body)
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = body or b""
        pairs = (("Content-Type", content_type), *(headers or {}).items())
        return cls("respond", status, raw, tuple(pairs), after_create)

    @classmethod
    def rate_limited(cls, retry_after: float | None = 1.0, *, after_create: bool = False) -> Fault:
        """429, with ``Retry-After: <seconds>`` unless ``retry_after`` is None (§3.2)."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        # New-api forks put a Chinese "upstream saturated, retry later" text on 429 (§3.2).
        body = _platform_error("当前分组上游负载已饱和，请稍后再试")
        return cls.response(429, body, headers=headers, after_create=after_create)

    @classmethod
    def server_error(cls, status: int = 500, *, after_create: bool = False) -> Fault:
        """A 5xx (500, 502, 503, 504, 524…) in the platform error envelope.

        With ``after_create=True`` the task exists server-side but the client gets the error.
        """
        body = _platform_error(f"upstream error: HTTP {status} (request id: fake)")
        return cls.response(status, body, after_create=after_create)

    @classmethod
    def unauthorized(cls) -> Fault:
        """401 "invalid token", as for a wrong key or base URL (§3.2)."""
        return cls.response(401, _platform_error("invalid token (request id: fake)"))

    @classmethod
    def garbage(cls, status: int = 200, *, after_create: bool = False) -> Fault:
        """``status`` with a body that claims JSON and is not."""
        return cls.response(status, b"\x00{not json", after_create=after_create)

    @classmethod
    def html(cls, status: int = 200, *, after_create: bool = False) -> Fault:
        """An HTML page where JSON belongs, as a wrong path or a proxy gives (§3.2)."""
        return cls.response(status, _HTML_404, content_type=_HTML, after_create=after_create)

    @classmethod
    def expired(cls, status: int = 403) -> Fault:
        """An output URL that expired (403/404/410, for the "cdn" kind; §1.10)."""
        body = "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
        return cls.response(status, body, content_type="application/xml")

    @classmethod
    def drop(cls, *, after_create: bool = False) -> Fault:
        """Close the connection without answering (after making the task, if asked)."""
        return cls("drop", after_create=after_create)

    @classmethod
    def drop_mid_body(cls, fraction: float = 0.5) -> Fault:
        """Send the real answer's headers and the first ``fraction`` of its body, then close.

        The request is processed first (a create makes its task).
        """
        if not 0 <= fraction < 1:
            raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
        return cls("drop_mid_body", after_create=True, fraction=fraction)

    @classmethod
    def delay(cls, seconds: float, then: Fault | None = None) -> Fault:
        """Wait ``seconds`` (real time, to trip client timeouts), then answer normally or
        apply ``then``. The request is processed even if the client gave up meanwhile."""
        return attrs.evolve(then or cls("pass"), wait=seconds)


# ---------------------------------------------------------------- records


@frozen
class RecordedRequest:
    """One request the fake received. ``headers`` look up case-insensitively; ``body`` is
    the parsed JSON (None when there was none or it was not JSON); ``time`` is the fake's
    clock; ``kind`` is the route kind ("submit", "poll", "cancel", "cdn"), None for unknown
    paths."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    raw: bytes
    time: float
    kind: RouteKind | None


@define(eq=False)
class TaskRecord:
    """One task the fake created, and where its life stands.

    ``family`` is ``"pro"`` (``/runway/pro/*``) or ``"official"`` (``/runwayml/v1/*``);
    ``files`` the output names served under ``/cdn/{task_id}/`` (the main output first);
    times are the fake's clock. ``started_at``/``finished_at`` are the moments the task
    entered that phase by its lifecycle (the clock limit, or the poll that crossed the poll
    limit), filled in once the fake notices (a poll, the ticker, ``status()``, a forced end).
    ``polls`` counts every poll, ``visible_polls`` those answered with a state.
    """

    task_id: str
    path: str
    family: Literal["pro", "official"]
    action: str
    body: dict[str, Any]
    lifecycle: Lifecycle
    created_at: float
    created_wall: float
    files: tuple[str, ...]
    callback_url: str | None = None
    polls: int = 0
    visible_polls: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    outcome: Outcome | None = None
    fail_reason: str | None = None
    failure_code: str | None = None
    forced: bool = False
    deleted: bool = False

    @property
    def done(self) -> bool:
        return self.finished_at is not None

    def wall(self, instant: float) -> float:
        """Unix time for an instant of the fake's clock."""
        return self.created_wall + (instant - self.created_at)


@frozen
class CallbackRecord:
    """One callback POST (``attempt`` 0, then 1… for duplicates). ``status`` is the
    receiver's HTTP status, or None with ``error`` saying why nothing was delivered."""

    task_id: str
    url: str
    payload: dict[str, Any]
    attempt: int
    status: int | None
    error: str | None
    time: float


# ---------------------------------------------------------------- small helpers


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=_dumps(value), headers={"Content-Type": _JSON})


def _flat_error(status: int, code: str, message: str) -> web.Response:
    # Task routes answer errors flat, new-api style (wire reference §3.1, §6 C17).
    return _json({"code": code, "message": message, "data": None}, status)


def _task_not_exist() -> web.Response:
    return _flat_error(400, "task_not_exist", "task_not_exist")  # §3.1


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _close_connection(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()


class _Choice(Generic[_T]):
    """A public attribute that takes one of a few words, checked on every assignment."""

    def __init__(self, *allowed: _T) -> None:
        self._allowed = allowed
        self._name = self._slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name, self._slot = name, "_" + name

    @overload
    def __get__(self, obj: None, owner: type) -> _Choice[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...
    def __get__(self, obj: object, owner: type | None = None) -> _T | _Choice[_T]:
        if obj is None:
            return self
        value: _T = getattr(obj, self._slot)
        return value

    def __set__(self, obj: object, value: _T) -> None:
        if value not in self._allowed:
            raise ValueError(f"{self._name} must be one of {self._allowed!r}, got {value!r}")
        setattr(obj, self._slot, value)


# Create routes: path -> (family, action word). Only IMAGE_TO_VIDEO is a documented action
# (§2); the others follow its pattern.
_CREATE_ROUTES: dict[str, tuple[Literal["pro", "official"], str]] = {
    "/runway/pro/generate": ("pro", "TEXT_TO_VIDEO"),
    "/runway/pro/video2video": ("pro", "VIDEO_TO_VIDEO"),
    "/runway/pro/act_one": ("pro", "ACT_ONE"),
    "/runwayml/v1/image_to_video": ("official", "IMAGE_TO_VIDEO"),
    "/runwayml/v1/video_to_video": ("official", "VIDEO_TO_VIDEO"),
    "/runwayml/v1/video_upscale": ("official", "VIDEO_UPSCALE"),
    "/runwayml/v1/character_performance": ("official", "CHARACTER_PERFORMANCE"),
    "/runwayml/v1/text_to_image": ("official", "TEXT_TO_IMAGE"),
}
_VIDEO_FILES = ("video.mp4", "poster.png", "last_frame.png")
_IMAGE_FILES = ("image.png",)
_CONTENT_TYPES = {"mp4": "video/mp4", "png": "image/png"}
_RUNWAY_DONE = {"succeed": "SUCCEEDED", "fail": "FAILED", "cancel": "CANCELLED"}
_CANCELLED = "Task was cancelled."
_STATUS_OF = {"succeed": TaskStatus.SUCCEEDED, "fail": TaskStatus.FAILED}


# ---------------------------------------------------------------- the fake


class FakeCometAPI:
    """An in-process fake of CometAPI's Runway routes on a real aiohttp server.

    Use ``async with FakeCometAPI() as fake:`` (or ``await fake.start()`` /
    ``await fake.close()``) and point a client at ``fake.url``. Serves (wire reference §1):
    ``POST /runway/pro/{generate,video2video,act_one}``, ``POST /runway/feed``,
    ``POST /runwayml/v1/{image_to_video,video_to_video,video_upscale,character_performance,
    text_to_image}``, ``GET``/``DELETE /runwayml/v1/tasks/{id}``, ``GET /cdn/{id}/{name}``;
    any other path gets an HTML 404 page (§3.2). Task ids are shared by both poll routes.

    Validation, as documented: a missing or non-``Bearer`` ``Authorization`` is 401 in the
    ``{"error": {...}}`` envelope, and so is a key other than ``api_key`` when one is set;
    bad JSON or a non-object body is 400 ``invalid_request``; ``/runway/pro/*`` without
    ``callback_url`` is 400 ``callback_url_empty``; ``text_to_image`` without
    ``referenceImages`` is 400 ``reference_images_empty`` (flat ``{"code","message","data"}``
    errors, §3.1); with ``require_version_header`` an official create without
    ``X-Runway-Version`` is 400. ``DELETE /runwayml/v1/tasks/{id}`` is undocumented on
    CometAPI (§5): it answers 405 unless ``allow_cancel``, then it behaves like Runway's
    (cancels a running task, deletes a finished one; 204).

    Settings (constructor keywords, and attributes that may change while it runs):

    * ``create_envelope`` "A1" | "A2" (default) | "A3" — ``/runway/pro/*`` create answers
      (§1.A); official creates always answer ``{"id": ...}``.
    * ``feed_envelope`` "F1" (default) | "F2" | "F3" — ``/runway/feed`` answers (§1.5).
    * ``tasks_envelope`` "T1" (default) | "T2" — ``/runwayml/v1/tasks/{id}`` answers (§1.10).
    * ``lifecycle`` — the default ``Lifecycle`` of new tasks; ``lifecycle_for`` — a mapping
      from prompt (``prompt`` or ``promptText``) to ``Lifecycle``, or a callable taking the
      create body and returning a ``Lifecycle`` or None (None: use ``lifecycle``).
    * ``callback_format`` "F3" (default: the upstream record, §4) | "F1" (the wrapper's
      ``data`` record); ``callback_duplicates`` extra posts per callback;
      ``callbacks_loopback_only`` (default True): callbacks to other hosts are recorded as
      skipped, never sent; hosts ending ``.invalid`` are ignored silently.
    * ``latency`` seconds added before every API answer (not ``/cdn``), as a real network
      and gateway add; ``output_size`` bytes per ``/cdn`` file; ``api_key``; ``allow_cancel``;
      ``require_version_header``; ``record_requests`` (False keeps ``requests`` empty).

    * ``callback_timeout`` seconds per callback POST; ``host``/``port`` where to bind
      (127.0.0.1, any free port).

    ``clock`` (default ``time.monotonic``) drives lifecycles and every recorded time.
    ``tick_interval`` is how often (real seconds) a background ticker ends clock-driven
    tasks, so their callbacks fire even when nobody polls (a lifecycle that counts polls
    ends only when polled); None disables it (call ``await fake.tick()`` instead).
    Records: ``requests``, ``tasks`` (by id, in creation order), ``callbacks_sent``;
    ``created_count()`` and ``request_count(kind)`` count them in O(1).
    """

    create_envelope = _Choice[CreateEnvelope]("A1", "A2", "A3")
    feed_envelope = _Choice[FeedEnvelope]("F1", "F2", "F3")
    tasks_envelope = _Choice[TasksEnvelope]("T1", "T2")
    callback_format = _Choice[CallbackFormat]("F3", "F1")

    def __init__(
        self,
        *,
        api_key: str | None = None,
        lifecycle: Lifecycle | None = None,
        lifecycle_for: LifecycleHook | None = None,
        create_envelope: CreateEnvelope = "A2",
        feed_envelope: FeedEnvelope = "F1",
        tasks_envelope: TasksEnvelope = "T1",
        callback_format: CallbackFormat = "F3",
        callback_duplicates: int = 0,
        callback_timeout: float = 5.0,
        callbacks_loopback_only: bool = True,
        allow_cancel: bool = False,
        require_version_header: bool = False,
        output_size: int = 64 * 1024,
        latency: float = 0.0,
        record_requests: bool = True,
        clock: Callable[[], float] = time.monotonic,
        tick_interval: float | None = 0.05,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.lifecycle = lifecycle if lifecycle is not None else Lifecycle()
        self.lifecycle_for = lifecycle_for
        self.create_envelope = create_envelope
        self.feed_envelope = feed_envelope
        self.tasks_envelope = tasks_envelope
        self.callback_format = callback_format
        self.callback_duplicates = callback_duplicates
        self.callback_timeout = callback_timeout
        self.callbacks_loopback_only = callbacks_loopback_only
        self.allow_cancel = allow_cancel
        self.require_version_header = require_version_header
        self.output_size = output_size
        self.latency = latency
        self.record_requests = record_requests
        self.clock = clock
        self.tick_interval = tick_interval
        self.host = host
        self.port = port

        self.requests: list[RecordedRequest] = []
        self.tasks: dict[str, TaskRecord] = {}
        self.callbacks_sent: list[CallbackRecord] = []

        self._kind_counts: Counter[RouteKind | None] = Counter()
        self._faults: dict[str, deque[list[Any]]] = {}
        self._due: list[tuple[float, str]] = []  # (finish time, task id) of clock-only lives
        self._deliveries: set[asyncio.Task[None]] = set()
        self._handling: set[asyncio.Task[Any]] = set()  # requests being answered
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._state: Literal["new", "open", "closed"] = "new"
        self._url = ""

    # ------------------------------------------------------------ lifetime

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT`` (no trailing slash); kept after close."""
        if not self._url:
            raise RuntimeError("FakeCometAPI is not started: use 'async with' or start()")
        return self._url

    async def start(self) -> Self:
        """Bind and serve; returns self. A fake starts once."""
        if self._state != "new":
            raise RuntimeError(f"FakeCometAPI cannot start: it is already {self._state}")
        app = web.Application()
        for path in _CREATE_ROUTES:
            app.router.add_post(path, self._h_create)
        app.router.add_post("/runway/feed", self._h_feed)
        app.router.add_get("/runwayml/v1/tasks/{task_id}", self._h_task)
        app.router.add_delete("/runwayml/v1/tasks/{task_id}", self._h_delete)
        app.router.add_get("/cdn/{task_id}/{name}", self._h_cdn)
        app.router.add_get("/_fake/tasks", self._h_inspect)
        app.router.add_route("*", "/{tail:.*}", self._h_unknown)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._url = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
        self._state = "open"
        if self.tick_interval is not None:
            self._ticker = asyncio.create_task(self._tick_forever(), name="FakeCometAPI ticker")
        return self

    async def close(self) -> None:
        """Stop the ticker, the server and any callback in flight. Safe to call twice."""
        if self._state == "closed":
            return
        self._state = "closed"
        self._closing.set()  # ends delay faults at once
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._runner is not None:
            await self._runner.cleanup()
        if self._handling:
            # Handlers whose client left are not awaited by aiohttp: let them end here.
            await asyncio.wait(set(self._handling), timeout=2.0)
        for delivery in list(self._deliveries):
            delivery.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ public helpers

    def inject(self, kind: RouteKind, fault: Fault, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests of ``kind``: "submit" (any create
        route), "poll" (feed and tasks), "cancel" (DELETE) or "cdn". Faults of one kind
        apply in the order injected."""
        if kind not in ("submit", "poll", "cancel", "cdn"):
            raise ValueError(f"kind must be 'submit', 'poll', 'cancel' or 'cdn', got {kind!r}")
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times!r}")
        self._faults.setdefault(kind, deque()).append([fault, times])

    def clear_faults(self, kind: RouteKind | None = None) -> None:
        """Drop the queued faults of ``kind`` (all kinds when None)."""
        if kind is None:
            self._faults.clear()
        else:
            self._faults.pop(kind, None)

    def pending_faults(self, kind: RouteKind) -> int:
        """How many requests of ``kind`` the queued faults will still hit."""
        return sum(entry[1] for entry in self._faults.get(kind, ()))

    def created_count(self) -> int:
        """How many tasks were created."""
        return len(self.tasks)

    def request_count(self, kind: RouteKind | None = None, *, all_kinds: bool = False) -> int:
        """How many requests of ``kind`` arrived (every request with ``all_kinds=True``)."""
        if all_kinds:
            return sum(self._kind_counts.values())
        return self._kind_counts[kind]

    def status(self, task_id: str) -> TaskStatus:
        """Where a task stands now by the fake's clock, without counting a poll (a task
        found ended is settled: its callback is sent)."""
        task = self.tasks[task_id]
        phase = self._phase(task, self.clock())
        if phase is _Phase.QUEUED:
            return TaskStatus.PENDING
        if phase is _Phase.RUNNING:
            return TaskStatus.RUNNING
        return _STATUS_OF.get(task.outcome or "", TaskStatus.CANCELLED)

    def finish(self, task_id: str) -> None:
        """End a task now, succeeded (its callback, if any, is sent)."""
        self._force(task_id, "succeed", None, None)

    def fail(
        self,
        task_id: str,
        reason: str = "The generation failed.",
        code: str = "INTERNAL.BAD_OUTPUT.CODE01",
    ) -> None:
        """End a task now, failed with ``reason`` and ``code`` (e.g. ``SAFETY.INPUT.TEXT``)."""
        self._force(task_id, "fail", reason, code)

    def cancel(self, task_id: str) -> None:
        """End a task now, cancelled."""
        self._force(task_id, "cancel", _CANCELLED, None)

    def output_url(self, task_id: str, name: str = "video.mp4") -> str:
        """The URL the fake gives out for an output file of a task."""
        return f"{self.url}/cdn/{task_id}/{name}"

    def output_bytes(self, task_id: str, name: str = "video.mp4") -> bytes:
        """The exact bytes ``/cdn/{task_id}/{name}`` serves (``output_size`` of them)."""
        return hashlib.shake_256(f"{task_id}/{name}".encode()).digest(self.output_size)

    async def tick(self) -> None:
        """Finish every clock-driven task that is due now, and wait for its callbacks."""
        self._process_due()
        await self.drain_callbacks()

    async def drain_callbacks(self) -> None:
        """Wait until every callback in flight has been delivered (or has failed)."""
        while self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)

    def reset(self) -> None:
        """Forget every request, task, callback and queued fault; keep the settings."""
        self.requests.clear()
        self.tasks.clear()
        self.callbacks_sent.clear()
        self._kind_counts.clear()
        self._faults.clear()
        self._due.clear()

    # ------------------------------------------------------------ the request pipeline

    async def _run(
        self,
        request: web.Request,
        kind: RouteKind,
        process: Callable[[web.Request, Any], web.StreamResponse],
    ) -> web.StreamResponse:
        """Record, apply a queued fault, process: every route goes through here."""
        current = asyncio.current_task()
        if current is not None:
            self._handling.add(current)
        try:
            if self.latency and kind != "cdn":
                await asyncio.sleep(self.latency)  # a network and gateway of its own
            return await self._answer(request, kind, process)
        finally:
            if current is not None:
                self._handling.discard(current)

    async def _answer(
        self,
        request: web.Request,
        kind: RouteKind,
        process: Callable[[web.Request, Any], web.StreamResponse],
    ) -> web.StreamResponse:
        raw = await request.read() if request.body_exists else b""
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        self._kind_counts[kind] += 1
        if self.record_requests:
            self.requests.append(
                RecordedRequest(
                    request.method, request.path, request.headers, body, raw, self.clock(), kind
                )
            )
        fault = self._take_fault(kind)
        if fault is not None:
            if fault.wait:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), fault.wait)
            if fault.action in ("respond", "drop") and not fault.after_create:
                return await self._apply(request, fault, None)
        answer = process(request, _BAD_JSON if bad_json else body)
        if fault is None or fault.action == "pass":
            return answer
        if fault.action == "drop_mid_body" or answer.status < 400:
            return await self._apply(request, fault, answer)
        return answer  # refused anyway: the refusal wins over an after-create fault

    def _take_fault(self, kind: str) -> Fault | None:
        queue = self._faults.get(kind)
        if not queue:
            return None
        entry = queue[0]
        entry[1] -= 1
        if entry[1] <= 0:
            queue.popleft()
        fault: Fault = entry[0]
        return fault

    async def _apply(
        self, request: web.Request, fault: Fault, answer: web.StreamResponse | None
    ) -> web.StreamResponse:
        if fault.action == "respond":
            return web.Response(status=fault.status, body=fault.body, headers=fault.headers)
        if fault.action == "drop" or not isinstance(answer, web.Response):
            # aiohttp sees the closed transport when it writes, and drops the answer quietly.
            _close_connection(request)
            return web.Response()
        body = answer.body if isinstance(answer.body, bytes) else b""
        partial = web.StreamResponse(status=answer.status, headers=answer.headers)
        partial.content_length = len(body)
        await partial.prepare(request)
        await partial.write(body[: int(len(body) * fault.fraction)])
        _close_connection(request)
        return partial

    def _auth_error(self, request: web.Request) -> web.Response | None:
        # Missing or wrong key: 401 in the platform envelope (wire reference §3.2).
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if not header.strip():
            message = "missing Authorization header: send 'Bearer <COMETAPI_KEY>'"
        elif scheme.lower() != "bearer" or not token:
            message = "invalid token: the Authorization header must be 'Bearer <key>'"
        elif self.api_key is not None and token != self.api_key:
            message = "invalid token (request id: fake)"
        else:
            return None
        return web.Response(
            status=401, body=_platform_error(message), headers={"Content-Type": _JSON}
        )

    # ------------------------------------------------------------ handlers

    async def _h_create(self, request: web.Request) -> web.StreamResponse:
        return await self._run(request, "submit", self._create)

    async def _h_feed(self, request: web.Request) -> web.StreamResponse:
        return await self._run(request, "poll", self._feed)

    async def _h_task(self, request: web.Request) -> web.StreamResponse:
        return await self._run(request, "poll", self._get_task)

    async def _h_delete(self, request: web.Request) -> web.StreamResponse:
        return await self._run(request, "cancel", self._delete_task)

    async def _h_cdn(self, request: web.Request) -> web.StreamResponse:
        return await self._run(request, "cdn", self._cdn)

    async def _h_inspect(self, request: web.Request) -> web.StreamResponse:
        """``GET /_fake/tasks``: every task created, for tests that run the fake in its own
        process (``python -m cometrunway.testing``) and count on the server's side."""
        now = self.clock()
        rows = []
        for task in self.tasks.values():
            self._phase(task, now)
            rows.append(
                {
                    "task_id": task.task_id,
                    "path": task.path,
                    "prompt": task.body.get("prompt", task.body.get("promptText")),
                    "created_wall": task.created_wall,
                    "done": task.done,
                    "outcome": task.outcome,
                    "polls": task.polls,
                }
            )
        return web.json_response({"tasks": rows, "requests": sum(self._kind_counts.values())})

    async def _h_unknown(self, request: web.Request) -> web.StreamResponse:
        # A wrong path is an HTML page, not a JSON 404 (wire reference §3.2).
        raw = await request.read() if request.body_exists else b""
        self._kind_counts[None] += 1
        if self.record_requests:
            self.requests.append(
                RecordedRequest(
                    request.method, request.path, request.headers, None, raw, self.clock(), None
                )
            )
        return web.Response(status=404, text=_HTML_404, content_type="text/html")

    def _create(self, request: web.Request, body: Any) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        if body is _BAD_JSON or not isinstance(body, dict):
            return _flat_error(400, "invalid_request", "request body must be a JSON object")
        path = request.path
        family, action = _CREATE_ROUTES[path]
        callback_url = body.get("callback_url")
        if family == "pro":
            if not isinstance(callback_url, str) or not callback_url.strip():
                return _flat_error(400, "callback_url_empty", "callback_url is required")  # §3.1
            if path == "/runway/pro/generate" and body.get("image"):
                action = "IMAGE_TO_VIDEO"
        else:
            callback_url = None  # §4: no callbacks on /runwayml/v1/*
            if self.require_version_header and not request.headers.get("X-Runway-Version"):
                message = "X-Runway-Version header is required"  # §0
                return web.Response(
                    status=400,
                    body=_platform_error(message, "invalid_request"),
                    headers={"Content-Type": _JSON},
                )
            refs = body.get("referenceImages")
            if action == "TEXT_TO_IMAGE" and (not isinstance(refs, list) or not refs):
                # CometAPI requires referenceImages where Runway does not (§1.11, §5).
                return _flat_error(400, "reference_images_empty", "reference_images_empty")
        task = self._new_task(path, family, action, body, callback_url)
        if family == "official":
            return _json({"id": task.task_id})  # §1.6
        return _json(self._create_answer(task))

    def _feed(self, request: web.Request, body: Any) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        task_id = body.get("task_id") if isinstance(body, dict) else None
        if not isinstance(task_id, str) or not task_id:
            return _flat_error(400, "invalid_request", "task_id is required")
        return self._poll(task_id, self.feed_envelope)

    def _get_task(self, request: web.Request, body: Any) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        # T2 is the F1 wrapper (wire reference §1.10, §6 C1).
        return self._poll(request.match_info["task_id"], self.tasks_envelope)

    def _delete_task(self, request: web.Request, body: Any) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        if not self.allow_cancel:
            # Not a CometAPI route (§5): expect 404/405.
            return web.Response(
                status=405,
                body=_platform_error("Method Not Allowed"),
                headers={"Content-Type": _JSON, "Allow": "GET"},
            )
        task = self.tasks.get(request.match_info["task_id"])
        if task is None or task.deleted:
            return _task_not_exist()
        # Runway's DELETE cancels a pending/running task and deletes a finished one (§5).
        if self._phase(task, self.clock()) is _Phase.DONE:
            task.deleted = True
        else:
            self._force(task.task_id, "cancel", _CANCELLED, None)
        return web.Response(status=204)

    def _cdn(self, request: web.Request, body: Any) -> web.Response:
        task = self.tasks.get(request.match_info["task_id"])
        name = request.match_info["name"]
        if (
            task is None
            or task.deleted
            or name not in task.files
            or self._phase(task, self.clock()) is not _Phase.DONE
            or task.outcome != "succeed"
        ):
            return web.Response(status=404, text="Not Found")
        data = self.output_bytes(task.task_id, name)
        size = len(data)
        headers = {
            "Content-Type": _CONTENT_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream"),
            "Accept-Ranges": "bytes",
        }
        if "Range" not in request.headers:
            return web.Response(body=data, headers=headers)
        try:
            wanted = request.http_range
            start, stop, _ = wanted.indices(size)
        except ValueError:
            start, stop = size, size
        if start >= stop:
            headers["Content-Range"] = f"bytes */{size}"
            return web.Response(status=416, headers=headers)
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        return web.Response(status=206, body=data[start:stop], headers=headers)

    # ------------------------------------------------------------ task lives

    def _new_task(
        self,
        path: str,
        family: Literal["pro", "official"],
        action: str,
        body: dict[str, Any],
        callback_url: str | None,
    ) -> TaskRecord:
        lifecycle = self._lifecycle_of(body)
        now = self.clock()
        task = TaskRecord(
            task_id=str(uuid.uuid4()),
            path=path,
            family=family,
            action=action,
            body=body,
            lifecycle=lifecycle,
            created_at=now,
            created_wall=time.time(),
            files=_IMAGE_FILES if action == "TEXT_TO_IMAGE" else _VIDEO_FILES,
            callback_url=callback_url,
        )
        self.tasks[task.task_id] = task
        if lifecycle.queued_polls == 0 and lifecycle.running_polls == 0:
            due = now + lifecycle.queued_for + lifecycle.running_for
            heapq.heappush(self._due, (due, task.task_id))
        return task

    def _lifecycle_of(self, body: Mapping[str, Any]) -> Lifecycle:
        hook = self.lifecycle_for
        chosen: Lifecycle | None = None
        if isinstance(hook, Mapping):
            prompt = body.get("prompt", body.get("promptText"))
            chosen = hook.get(prompt) if isinstance(prompt, str) else None
        elif hook is not None:
            chosen = hook(body)
        return chosen if chosen is not None else self.lifecycle

    def _poll(self, task_id: str, envelope: str) -> web.Response:
        task = self.tasks.get(task_id)
        if task is None:
            return _task_not_exist()
        now = self.clock()
        task.polls += 1
        life = task.lifecycle
        hidden = task.polls <= life.not_found_polls or now - task.created_at < life.not_found_for
        if task.deleted or (hidden and not task.forced):
            return _task_not_exist()  # a fresh id may be invisible for a while (§1.5, §3.1)
        task.visible_polls += 1
        phase = self._phase(task, now, polled=True)
        return _json(self._poll_answer(task, phase, now, envelope))

    def _phase(self, task: TaskRecord, now: float, *, polled: bool = False) -> _Phase:
        """Where ``task`` stands at ``now``; settles it (once) when it reached its end."""
        if task.finished_at is not None:
            return _Phase.DONE
        life = task.lifecycle
        seen = max(task.visible_polls, 1)  # without polls yet: what the first poll will see
        queued_polls = life.queued_polls
        needed = queued_polls + life.running_polls
        by_polls = (
            _Phase.QUEUED
            if seen <= queued_polls
            else _Phase.RUNNING
            if seen <= needed
            else _Phase.DONE
        )
        elapsed = now - task.created_at
        queue_end = life.queued_for
        run_end = queue_end + life.running_for
        by_time = (
            _Phase.QUEUED
            if elapsed < queue_end
            else _Phase.RUNNING
            if elapsed < run_end
            else _Phase.DONE
        )
        phase = min(by_polls, by_time)
        # A phase ends at the later of its two limits: this poll, or the clock's moment.
        if phase >= _Phase.RUNNING and task.started_at is None:
            crossed_now = polled and queued_polls > 0 and task.visible_polls == queued_polls + 1
            task.started_at = now if crossed_now else task.created_at + queue_end
        if phase is _Phase.DONE:
            crossed_now = polled and needed > 0 and task.visible_polls == needed + 1
            when = now if crossed_now else task.created_at + run_end
            if life.outcome == "fail":
                self._settle(task, when, "fail", life.fail_reason, life.failure_code)
            else:
                reason = _CANCELLED if life.outcome == "cancel" else None
                self._settle(task, when, life.outcome, reason, None)
        return phase

    def _progress(self, task: TaskRecord, now: float) -> float:
        life = task.lifecycle
        fractions = []
        if life.running_polls:
            seen = max(task.visible_polls, 1)
            fractions.append((seen - life.queued_polls) / (life.running_polls + 1))
        if life.running_for > 0:
            fractions.append((now - task.created_at - life.queued_for) / life.running_for)
        progress = min(fractions) if fractions else 0.5
        return min(0.99, max(0.01, progress))

    def _force(self, task_id: str, outcome: Outcome, reason: str | None, code: str | None) -> None:
        task = self.tasks[task_id]
        if task.finished_at is not None:
            raise ValueError(f"task {task_id} already ended ({task.outcome})")
        now = self.clock()
        task.forced = True
        if task.started_at is None:
            task.started_at = now
        self._settle(task, now, outcome, reason, code)

    def _settle(
        self, task: TaskRecord, when: float, outcome: Outcome, reason: str | None, code: str | None
    ) -> None:
        task.finished_at = when
        if task.started_at is None or task.started_at > when:
            task.started_at = when
        task.outcome = outcome
        task.fail_reason = reason
        task.failure_code = code
        if task.callback_url is not None:
            self._send_callback(task)

    def _process_due(self) -> None:
        now = self.clock()
        due = self._due
        while due and due[0][0] <= now:
            _, task_id = heapq.heappop(due)
            task = self.tasks.get(task_id)
            if task is not None and task.finished_at is None:
                self._phase(task, now)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval or 0.05)
            self._process_due()

    # ------------------------------------------------------------ envelopes

    def _create_answer(self, task: TaskRecord) -> dict[str, Any]:
        data: dict[str, Any] = {"task_id": task.task_id}
        envelope = self.create_envelope
        if envelope == "A2":
            # Compatibility pages, newer snapshot: no exec_time, message and msg (§1.A A2).
            return {"code": 200, "message": "", "msg": "success", "data": data}
        if envelope == "A3":
            # The upstream reseller answer (§1.A A3).
            return {"code": 200, "msg": "成功", "data": data, "exec_time": 0.67573}
        if task.path == "/runway/pro/video2video":
            # Reverse-format video2video documents a richer data object (§1.A).
            prompt = task.body.get("prompt") or ""
            empty = dict.fromkeys(("video_url", "last_frame", "msg", "poster"), "")
            stamp = str(int(task.created_wall))
            data.update(state="", status="0", prompt=prompt, prompt_en=prompt, **empty)
            data.update(create_time=stamp, update_time=stamp)
        # Reverse pages, validated live: code 200, msg 成功 (§1.A A1).
        return {"code": 200, "msg": "成功", "data": data, "exec_time": 0.1}

    def _poll_answer(
        self, task: TaskRecord, phase: _Phase, now: float, envelope: str
    ) -> dict[str, Any]:
        if envelope == "T1":
            return self._runway_task(task, phase, now)
        if envelope == "F3":
            # Upstream reseller answer (wire reference §1.5 F3).
            record = self._upstream_record(task, phase)
            return {"code": 200, "msg": "成功", "data": record, "exec_time": 0.028943}
        if envelope == "F2":
            return self._wrapper_record(task, phase, now, flat=True)  # §1.5 F2
        # F1 and T2: the CometAPI wrapper (§1.5 F1, §1.10 T2).
        return {"code": "success", "message": "", "data": self._wrapper_record(task, phase, now)}

    def _runway_task(self, task: TaskRecord, phase: _Phase, now: float) -> dict[str, Any]:
        """The bare Runway task object (wire reference §1.10 T1, §5)."""
        created = datetime.fromtimestamp(task.created_wall, UTC)
        answer: dict[str, Any] = {
            "id": task.task_id,
            "status": "PENDING",
            "createdAt": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if phase is _Phase.RUNNING:
            answer["status"] = "RUNNING"
            answer["progress"] = round(self._progress(task, now), 3)
        elif phase is _Phase.DONE:
            outcome = task.outcome or "succeed"
            answer["status"] = _RUNWAY_DONE[outcome]
            if outcome == "succeed":
                answer["output"] = [self.output_url(task.task_id, task.files[0])]
            elif outcome == "fail":
                answer["failure"] = task.fail_reason or ""
                answer["failureCode"] = task.failure_code or ""
        return answer

    def _wrapper_record(
        self, task: TaskRecord, phase: _Phase, now: float, *, flat: bool = False
    ) -> dict[str, Any]:
        """The wrapper's task record (F1/T2 ``data``; F2 when ``flat``, with ``result_url``)."""
        # Wrapper words, percent-string progress, "100%" at the end (wire reference §2).
        nested = self._runway_task(task, phase, now)
        succeeded = phase is _Phase.DONE and task.outcome == "succeed"
        if phase is _Phase.QUEUED:
            status, progress = task.lifecycle.queued_word, "0%"
        elif phase is _Phase.RUNNING:
            status, progress = "IN_PROGRESS", f"{int(self._progress(task, now) * 100)}%"
        else:
            # The wrapper has no cancel word: FAILURE, nested CANCELLED (§2, §6 C15).
            status, progress = ("SUCCESS" if succeeded else "FAILURE"), "100%"
        if succeeded and len(task.files) > 1:
            nested["poster"] = self.output_url(task.task_id, task.files[1])
            nested["last_frame"] = self.output_url(task.task_id, task.files[2])
        record: dict[str, Any] = {
            "task_id": task.task_id,
            "action": task.action,
            "status": status,
            "fail_reason": (task.fail_reason or "") if phase is _Phase.DONE else "",
        }
        if flat:
            main_url = self.output_url(task.task_id, task.files[0]) if succeeded else ""
            record["result_url"] = main_url
        started = task.started_at if phase is not _Phase.QUEUED else None
        finished = task.finished_at if phase is _Phase.DONE else None
        record.update(
            submit_time=int(task.created_wall),
            start_time=int(task.wall(started)) if started is not None else 0,
            finish_time=int(task.wall(finished)) if finished is not None else 0,
            progress=progress,
            data=nested,
        )
        return record

    def _upstream_record(self, task: TaskRecord, phase: _Phase) -> dict[str, Any]:
        """The upstream record (wire reference §1.5 F3): digits, 3 = success, 2 = failure
        (§6 C4); times are unix seconds as strings; URLs null until done."""
        succeeded = phase is _Phase.DONE and task.outcome == "succeed"
        failed = phase is _Phase.DONE and not succeeded
        digit = {_Phase.QUEUED: "0", _Phase.RUNNING: "1"}.get(phase, "3" if succeeded else "2")
        urls = [self.output_url(task.task_id, name) for name in task.files] if succeeded else []
        prompt = task.body.get("prompt", task.body.get("promptText")) or ""
        latest = task.finished_at if phase is _Phase.DONE else None
        if latest is None and phase is _Phase.RUNNING:
            latest = task.started_at
        return {
            "task_id": task.task_id,
            "status": digit,
            "prompt": prompt,
            "prompt_en": prompt,
            "video_url": urls[0] if urls else None,
            "poster": urls[1] if len(urls) > 1 else None,
            "last_frame": urls[2] if len(urls) > 2 else None,
            "msg": task.fail_reason if failed else None,
            "point": "200",
            "refund": "1" if failed else "0",
            "create_time": str(int(task.created_wall)),
            "update_time": str(int(task.wall(latest if latest is not None else task.created_at))),
        }

    # ------------------------------------------------------------ callbacks

    def _send_callback(self, task: TaskRecord) -> None:
        # POST the result to /runway/pro/* callback_url once the task ends (§4).
        url = task.callback_url
        if url is None or self._state == "closed":
            return
        try:
            host = URL(url).host or ""
        except ValueError:
            host = ""
        if host == "invalid" or host.endswith(".invalid"):
            return  # the client's inert default: never resolves (DESIGN, RFC 2606)
        if self.callback_format == "F1":
            payload = self._wrapper_record(task, _Phase.DONE, self.clock())
        else:
            payload = self._upstream_record(task, _Phase.DONE)
        reason = None
        if self.callbacks_loopback_only and not _is_loopback(host):
            reason = f"skipped: {host or url!r} is not a loopback host (callbacks_loopback_only)"
        else:
            try:
                delivery = asyncio.get_running_loop().create_task(
                    self._deliver(task.task_id, url, payload)
                )
            except RuntimeError:
                reason = "skipped: no running event loop (end tasks from the fake's loop)"
            else:
                self._deliveries.add(delivery)
                delivery.add_done_callback(self._deliveries.discard)
        if reason is not None:
            self.callbacks_sent.append(
                CallbackRecord(task.task_id, url, payload, 0, None, reason, self.clock())
            )

    async def _deliver(self, task_id: str, url: str, payload: dict[str, Any]) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.callback_timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        body = _dumps(payload)
        # Upstream may post more than once per task (§4): receivers must be idempotent.
        for attempt in range(1 + max(0, self.callback_duplicates)):
            status: int | None = None
            error: str | None = None
            try:
                async with self._session.post(
                    url, data=body, headers={"Content-Type": _JSON}
                ) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"  # swallowed: the receiver's problem
            self.callbacks_sent.append(
                CallbackRecord(task_id, url, payload, attempt, status, error, self.clock())
            )


_BAD_JSON: Any = object()


# ---------------------------------------------------------------- python -m


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cometrunway.testing",
        description="Serve a fake CometAPI (Runway routes) until SIGINT/SIGTERM; "
        "prints its base URL on the first line.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--api-key", default=None, help="accept only this key")
    parser.add_argument("--create-envelope", choices=("A1", "A2", "A3"), default="A2")
    parser.add_argument("--feed-envelope", choices=("F1", "F2", "F3"), default="F1")
    parser.add_argument("--tasks-envelope", choices=("T1", "T2"), default="T1")
    parser.add_argument("--queued-for", type=float, default=0.0, help="seconds queued")
    parser.add_argument("--running-for", type=float, default=0.0, help="seconds running")
    parser.add_argument("--queued-polls", type=int, default=0, help="polls answered queued")
    parser.add_argument("--running-polls", type=int, default=0, help="polls answered running")
    parser.add_argument("--not-found-polls", type=int, default=0, help="task_not_exist polls")
    parser.add_argument("--output-size", type=int, default=64 * 1024, help="bytes per output")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added before each API answer"
    )
    parser.add_argument(
        "--remote-callbacks", action="store_true", help="also post callbacks to other hosts"
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    lifecycle = Lifecycle(
        queued_for=args.queued_for,
        running_for=args.running_for,
        queued_polls=args.queued_polls,
        running_polls=args.running_polls,
        not_found_polls=args.not_found_polls,
    )
    fake = FakeCometAPI(
        api_key=args.api_key,
        lifecycle=lifecycle,
        create_envelope=args.create_envelope,
        feed_envelope=args.feed_envelope,
        tasks_envelope=args.tasks_envelope,
        output_size=args.output_size,
        latency=args.latency,
        callbacks_loopback_only=not args.remote_callbacks,
        host=args.host,
        port=args.port,
    )
    async with fake:
        print(fake.url, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run a fake CometAPI in this process until SIGINT or SIGTERM; returns the exit code."""
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
