"""``FakeCometAPI``: the fake CometAPI server itself (routes, settings, records, task lives).

Its values (``Lifecycle``, ``Fault``, records) are in ``_values``, its answer bodies in
``_envelopes``, its HTTP pieces in ``_http``, its output files in ``_media``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Literal, Self

import aiohttp
from aiohttp import web
from yarl import URL

from ..models import TaskStatus
from . import _media
from ._envelopes import (
    CANCELLED_REASON,
    create_answer,
    official_create_answer,
    output_url,
    poll_answer,
    upstream_record,
    wrapper_record,
)
from ._http import (
    _auth_error,
    _Choice,
    _flat_error,
    _is_loopback,
    _json,
    _official_refusal,
    _platform_response,
    _post_callback,
    _ranged,
    _task_not_exist,
    _unknown_route,
)
from ._inspect import poll_rows, task_rows
from ._lives import advance
from ._pipeline import BAD_JSON, _RequestPipeline
from ._values import (
    NOT_FOUND_SHAPES,
    CallbackFormat,
    CallbackRecord,
    CreateEnvelope,
    FeedEnvelope,
    Lifecycle,
    LifecycleHook,
    NotFoundShape,
    Outcome,
    TaskRecord,
    TasksEnvelope,
    UnknownRoute,
    _dumps,
    _Phase,
)

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
    "/runwayml/v1/text_to_speech": ("official", "TEXT_TO_SPEECH"),  # §8.1
    "/runwayml/v1/sound_effect": ("official", "SOUND_EFFECT"),  # §8.1
}
_STATUS_OF = {"succeed": TaskStatus.SUCCEEDED, "fail": TaskStatus.FAILED}
_DEFAULT_TICK = 0.05


class FakeCometAPI(_RequestPipeline):
    """An in-process fake of CometAPI's Runway routes on a real aiohttp server.

    Use ``async with FakeCometAPI() as fake:`` (or ``await fake.start()`` /
    ``await fake.close()``) and point a client at ``fake.url``. Serves (see :doc:`/quirks`):
    ``POST /runway/pro/{generate,video2video,act_one}``, ``POST /runway/feed``,
    ``POST /runwayml/v1/{image_to_video,video_to_video,video_upscale,character_performance,
    text_to_image,text_to_speech,sound_effect}`` (the last two: §8.1),
    ``GET``/``DELETE /runwayml/v1/tasks/{id}``, ``GET /cdn/{id}/{name}``; any other path gets
    an HTML 404 page as on CometAPI (§3.2), or a JSON 404 with ``unknown_route="json"``.
    Task ids are shared by both poll routes.

    Validation, as documented: a missing or non-``Bearer`` ``Authorization`` is 401 in the
    ``{"error": {...}}`` envelope, and so is a key other than ``api_key`` when one is set;
    bad JSON or a non-object body is 400 ``invalid_request``; ``/runway/pro/*`` without
    ``callback_url`` is 400 ``callback_url_empty``; ``text_to_image`` without
    ``referenceImages`` is 400 ``reference_images_empty``; an audio create without a
    ``promptText``, or ``sound_effect`` with a field it does not take (the route is strict,
    §8.1), is 400 ``invalid_request`` (flat ``{"code","message","data"}`` errors, §3.1); with
    ``require_version_header`` an official create without ``X-Runway-Version`` is 400.
    ``DELETE /runwayml/v1/tasks/{id}`` is undocumented on CometAPI (§5, §8.6): it answers 405
    unless ``allow_cancel``, then it behaves like Runway's (cancels a pending or running
    task, deletes a finished one; 204).

    Settings (constructor keywords, and attributes that may change while it runs):

    * ``create_envelope`` "A1" | "A2" (default) | "A3" — ``/runway/pro/*`` create answers
      (§1.A); official creates always answer ``{"id": ...}``.
    * ``feed_envelope`` "F1" (default) | "F2" | "F3" — ``/runway/feed`` answers (§1.5).
    * ``tasks_envelope`` "T1" (default) | "T2" — ``/runwayml/v1/tasks/{id}`` answers (§1.10);
      "lowercase" — a T1 object with lowercase status words and a failure's text under
      ``error``, as a CometAPI tutorial reads it (§8.5).
    * ``cost_fields`` (default True) — official create answers carry Runway's
      ``estimatedCost``, official task objects ``estimatedCost`` until they end and ``cost``
      after (§8.2); False leaves them out, as CometAPI's pages do.
    * ``not_found_shape`` — how "not visible yet" answers look (§8.4): "code_400" (default:
      new-api's flat error at 400), "code_200", "status_200", "message_200", "text_400";
      ``Fault.task_not_exist(shape)`` injects one for a single poll.
    * ``lifecycle`` — the default ``Lifecycle`` of new tasks; ``lifecycle_for`` — a mapping
      from prompt (``prompt`` or ``promptText``) to ``Lifecycle``, or a callable taking the
      create body and returning a ``Lifecycle`` or None (None: use ``lifecycle``).
    * ``callback_format`` "F3" (default: the upstream record, §4) | "F1" (the wrapper's
      ``data`` record); ``callback_duplicates`` extra posts per callback;
      ``callbacks_loopback_only`` (default True): callbacks to other hosts are recorded as
      skipped, never sent; hosts ending ``.invalid`` are ignored silently.
    * ``latency`` seconds added before every API answer (not ``/cdn``), as a real network
      and gateway add; ``output_size``: None (default) serves real tiny media (MP4, PNG,
      MP3), a number that many deterministic bytes per ``/cdn`` file; ``api_key``;
      ``allow_cancel``; ``unknown_route`` "html" (default) | "json";
      ``require_version_header``; ``record_requests`` (False keeps ``requests`` empty).

    * ``callback_timeout`` seconds per callback POST; ``host``/``port`` where to bind
      (127.0.0.1, any free port).

    ``clock`` (default ``time.monotonic``) drives lifecycles and every recorded time.
    ``tick_interval`` is how often (real seconds) a background ticker ends clock-driven
    tasks, so their callbacks fire even when nobody polls (a lifecycle that counts polls
    ends only when polled); None disables it (call ``await fake.tick()`` instead).
    Records: ``requests`` (the polls alone: :meth:`poll_log`), ``tasks`` (by id, in creation
    order), ``callbacks_sent``; ``created_count()`` and ``request_count(kind)`` count them
    in O(1).
    """

    create_envelope: _Choice[CreateEnvelope] = _Choice[CreateEnvelope]("A1", "A2", "A3")
    feed_envelope: _Choice[FeedEnvelope] = _Choice[FeedEnvelope]("F1", "F2", "F3")
    tasks_envelope: _Choice[TasksEnvelope] = _Choice[TasksEnvelope]("T1", "T2", "lowercase")
    not_found_shape: _Choice[NotFoundShape] = _Choice[NotFoundShape](*NOT_FOUND_SHAPES)
    unknown_route: _Choice[UnknownRoute] = _Choice[UnknownRoute]("html", "json")
    callback_format: _Choice[CallbackFormat] = _Choice[CallbackFormat]("F3", "F1")

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
        cost_fields: bool = True,
        not_found_shape: NotFoundShape = "code_400",
        unknown_route: UnknownRoute = "html",
        output_size: int | None = None,
        latency: float = 0.0,
        record_requests: bool = True,
        clock: Callable[[], float] = time.monotonic,
        tick_interval: float | None = 0.05,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(latency=latency, record_requests=record_requests, clock=clock)
        self.api_key = api_key
        self.lifecycle: Lifecycle = lifecycle if lifecycle is not None else Lifecycle()
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
        self.cost_fields = cost_fields
        self.not_found_shape = not_found_shape
        self.unknown_route = unknown_route
        self.output_size = output_size
        self.tick_interval = tick_interval
        self.host = host
        self.port = port

        self.tasks: dict[str, TaskRecord] = {}
        self.callbacks_sent: list[CallbackRecord] = []

        self._due: list[tuple[float, str]] = []  # (finish time, task id) of clock-only lives
        self._deliveries: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
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
        app.router.add_get("/_fake/polls", self._h_polls)
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

    def created_count(self) -> int:
        """How many tasks were created."""
        return len(self.tasks)

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
        self._force(task_id, "cancel", CANCELLED_REASON, None)

    def output_url(self, task_id: str, name: str = "video.mp4") -> str:
        """The URL the fake gives out for an output file of a task."""
        return output_url(self.url, task_id, name)

    def output_bytes(self, task_id: str, name: str = "video.mp4") -> bytes:
        """The exact bytes ``/cdn/{task_id}/{name}`` serves: the packaged media file, or
        ``output_size`` deterministic bytes when that is set."""
        return _media.output_bytes(task_id, name, self.output_size)

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
        for task in self.tasks.values():
            self._phase(task, now)
        rows = task_rows(self.tasks.values())
        return web.json_response({"tasks": rows, "requests": sum(self._kind_counts.values())})

    def poll_log(self) -> list[dict[str, Any]]:
        """Every poll received: ``task_id``, ``time`` (the fake's clock) and ``user_agent``,
        so a test of several clients can tell who polled which task when."""
        return poll_rows(self.requests)

    async def _h_polls(self, request: web.Request) -> web.StreamResponse:
        """``GET /_fake/polls``: :meth:`poll_log`, for a fake in its own process."""
        return web.json_response({"polls": self.poll_log()})

    async def _h_unknown(self, request: web.Request) -> web.StreamResponse:
        await self._record(request, None)
        return _unknown_route(request, json_errors=self.unknown_route == "json")

    def _create(self, request: web.Request, body: Any) -> web.Response:
        denied = _auth_error(request, self.api_key)
        if denied is not None:
            return denied
        if body is BAD_JSON or not isinstance(body, dict):
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
                return _platform_response(400, message, "invalid_request")
            refused = _official_refusal(action, body)
            if refused is not None:
                return refused
        task = self._new_task(path, family, action, body, callback_url)
        if family == "official":
            return _json(official_create_answer(task, self.cost_fields))  # §1.6, §8.2
        return _json(create_answer(task, self.create_envelope))

    def _feed(self, request: web.Request, body: Any) -> web.Response:
        denied = _auth_error(request, self.api_key)
        if denied is not None:
            return denied
        task_id = body.get("task_id") if isinstance(body, dict) else None
        if not isinstance(task_id, str) or not task_id:
            return _flat_error(400, "invalid_request", "task_id is required")
        return self._poll(task_id, self.feed_envelope)

    def _get_task(self, request: web.Request, body: Any) -> web.Response:
        denied = _auth_error(request, self.api_key)
        if denied is not None:
            return denied
        # T2 is the F1 wrapper (wire reference §1.10, §6 C1).
        return self._poll(request.match_info["task_id"], self.tasks_envelope)

    def _delete_task(self, request: web.Request, body: Any) -> web.Response:
        denied = _auth_error(request, self.api_key)
        if denied is not None:
            return denied
        if not self.allow_cancel:
            # Not a CometAPI route (§5, §8.6): expect 404/405.
            return _platform_response(405, "Method Not Allowed", Allow="GET")
        task = self.tasks.get(request.match_info["task_id"])
        if task is None or task.deleted:
            return _task_not_exist(self.not_found_shape)
        # Runway's DELETE cancels a pending/running task and deletes a finished one (§5).
        if self._phase(task, self.clock()) is _Phase.DONE:
            task.deleted = True
        else:
            self._force(task.task_id, "cancel", CANCELLED_REASON, None)
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
        return _ranged(request, self.output_bytes(task.task_id, name), _media.content_type(name))

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
            files=_media.files_for(action),
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
            return _task_not_exist(self.not_found_shape)
        now = self.clock()
        task.polls += 1
        life = task.lifecycle
        hidden = task.polls <= life.not_found_polls or now - task.created_at < life.not_found_for
        if task.deleted or (hidden and not task.forced):
            # A fresh id may be invisible for a while (§1.5, §3.1, §8.4).
            return _task_not_exist(self.not_found_shape)
        task.visible_polls += 1
        phase = self._phase(task, now, polled=True)
        return _json(poll_answer(task, phase, now, envelope, self.url, self.cost_fields))

    def _phase(self, task: TaskRecord, now: float, *, polled: bool = False) -> _Phase:
        """Where ``task`` stands at ``now``; settles it (once) when it reached its end."""
        if task.finished_at is not None:
            return _Phase.DONE
        phase, ended_at = advance(task, now, polled=polled)
        if ended_at is not None:
            life = task.lifecycle
            if life.outcome == "fail":
                self._settle(task, ended_at, "fail", life.fail_reason, life.failure_code)
            else:
                reason = CANCELLED_REASON if life.outcome == "cancel" else None
                self._settle(task, ended_at, life.outcome, reason, None)
        return phase

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
            await asyncio.sleep(self.tick_interval or _DEFAULT_TICK)
            self._process_due()

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
            payload = wrapper_record(task, _Phase.DONE, self.clock(), self.url, self.cost_fields)
        else:
            payload = upstream_record(task, _Phase.DONE, self.url)
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
            status, error = await _post_callback(self._session, url, body)
            self.callbacks_sent.append(
                CallbackRecord(task_id, url, payload, attempt, status, error, self.clock())
            )
