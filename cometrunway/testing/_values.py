"""The fake's values: task lifecycles, faults to inject, and the records of what it saw.

Everything here is plain data with named constructors; ``FakeCometAPI`` (``_fake``) acts on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import Any, Literal, TypeAlias

import attrs
from attrs import define, field, frozen

Outcome: TypeAlias = Literal["succeed", "fail", "cancel"]
RouteKind: TypeAlias = Literal["submit", "poll", "cancel", "cdn"]
CreateEnvelope: TypeAlias = Literal["A1", "A2", "A3"]
FeedEnvelope: TypeAlias = Literal["F1", "F2", "F3"]
TasksEnvelope: TypeAlias = Literal["T1", "T2", "lowercase"]
UnknownRoute: TypeAlias = Literal["html", "json"]
# The shapes of "task not visible yet" (wire reference §3.1, §8.4), see NOT_FOUND_SHAPES.
NotFoundShape: TypeAlias = Literal["code_400", "code_200", "status_200", "message_200", "text_400"]
CallbackFormat: TypeAlias = Literal["F3", "F1"]


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
    create, polls answer ``task_not_exist`` (see :doc:`/quirks`); those polls do not
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


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# ---------------------------------------------------------------- faults


def _platform_error(message: str, code: str = "") -> bytes:
    # The platform error envelope (wire reference §3.2); `code` may be empty.
    error = {"message": message, "type": "comet_api_error", "param": "", "code": code}
    return _dumps({"error": error})


_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_NOT_EXIST = "task_not_exist"

# Every "not visible yet" answer a client may meet (wire reference §3.1, §8.4):
# shape -> (HTTP status, body, content type).
NOT_FOUND_SHAPES: Mapping[NotFoundShape, tuple[int, bytes, str]] = {
    # new-api's fetch handler (§3.1): the flat task error at 400.
    "code_400": (400, _dumps({"code": _NOT_EXIST, "message": _NOT_EXIST, "data": None}), _JSON),
    # The same inside a 200, as a CometAPI client in the wild reports (§8.4).
    "code_200": (200, _dumps({"code": _NOT_EXIST, "message": _NOT_EXIST, "data": None}), _JSON),
    # CometAPI's own tutorial code reads a 200 {"status": "task_not_exist"} (§8.4).
    "status_200": (200, _dumps({"status": _NOT_EXIST}), _JSON),
    "message_200": (200, _dumps({"message": _NOT_EXIST}), _JSON),
    # A plain-text body (§8.4); the status is not documented, 400 as new-api answers.
    "text_400": (400, _NOT_EXIST.encode(), _TEXT),
}
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
    def task_not_exist(cls, shape: NotFoundShape = "code_400") -> Fault:
        """A "not visible yet" answer in one of the shapes of §8.4 in :doc:`/quirks` (for the
        "poll" or "cancel" kinds): ``"code_400"``, ``"code_200"``, ``"status_200"``,
        ``"message_200"`` or ``"text_400"``; see ``NOT_FOUND_SHAPES``."""
        if shape not in NOT_FOUND_SHAPES:
            raise ValueError(f"shape must be one of {tuple(NOT_FOUND_SHAPES)!r}, got {shape!r}")
        status, body, content_type = NOT_FOUND_SHAPES[shape]
        return cls.response(status, body, content_type=content_type)

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
