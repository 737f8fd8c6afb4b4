"""``Client``: the ``async with`` object users hold. It only wires.

Options and lifecycle (NEW → OPEN → CLOSING → CLOSED) live here; the work is done by the
pieces it connects: ``_submit.Submitter`` (one create, where "never pay twice" is kept),
``poller.Poller`` fed by a ``TaskSource`` (``_source``) and writing to a ``TaskSink``
(``_observer``), the transport seam (``transport``) paced by one ``RequestBudget``, and the
journal (where "never lose a task id" is kept). The poller and every create attempt run as
children of one ``TaskGroup``, so their bugs surface from the ``async with``; user callbacks
never run where their exceptions could end the client.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import secrets
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypedDict, Unpack

import aiohttp
from attrs import frozen

from . import _reconcile
from ._batching import as_completed, attempt_each, check_concurrency, listed
from ._cancel import Canceller
from ._keyguard import KeyGuard
from ._observer import TaskObserver
from ._options import DEFAULT_BASE_URL, check_options, with_token
from ._source import ApiTaskSource
from ._submit import Submitter, request_key
from .budget import Clock, PacedSender, RequestBudget, Sleep
from .errors import BatchSubmitError, ClientStateError
from .events import Event, EventHub
from .handles import TaskHandle
from .journal import Journal, JournalEntry, open_journal, settle_all
from .models import REQUEST_TYPES, PollRoute, Request, Task
from .policies import PollPolicy, RetryPolicy
from .poller import Poller, PollerStatistics
from .protocol import DEFAULT_RUNWAY_VERSION, build_submit, check_poll_route, check_task_id
from .transport import DEFAULT_TIMEOUT, AiohttpTransport, Transport

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["DEFAULT_BASE_URL", "Client", "ClientOptions", "ClientStatistics", "request_key"]

log: logging.Logger = logging.getLogger("cometrunway")

_CALLBACK_TOKEN_BYTES = 24  # a 32-character token


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSING = "closing"  # no new work; creates in flight still land (and are journaled)
    CLOSED = "closed"


@frozen
class ClientStatistics:
    """Counts since the client opened; ``poller`` has the polling side."""

    submits: int
    submit_retries: int
    ambiguous_submits: int
    rate_limited: int
    request_rate: float
    poller: PollerStatistics


class ClientOptions(TypedDict, total=False):
    """``Client``'s keyword options, as ``Client.from_env(**options)`` takes them."""

    base_url: str
    runway_version: str | None
    callback_url: str | None
    callback_token: str | None
    session: aiohttp.ClientSession | None
    retry: RetryPolicy
    poll: PollPolicy
    journal: str | os.PathLike[str] | Journal | None
    http_timeouts: aiohttp.ClientTimeout
    transport: Transport | None
    on_event: Callable[[Event], object] | None
    clock: Clock
    sleep: Sleep


class Client:
    """An asyncio client for CometAPI's Runway routes.

    ::

        async with Client.from_env() as client:
            handle = await client.submit(TextToVideo("a cat on a skateboard"))
            task = await handle
            print(task.video_url)

    A client is opened once: reopening a closed client raises ``ClientStateError``. Options
    are keyword-only; nothing is read from the environment here (``from_env`` does that).

    Parameters:

    * ``api_key`` — your CometAPI key. Sent only in the ``Authorization`` header to
      ``base_url``; never in a message, repr, log line, journal or download request.
    * ``base_url`` — the API's root (default ``https://api.cometapi.com``).
    * ``runway_version`` — the ``X-Runway-Version`` header for ``/runwayml/v1/*`` routes;
      None sends none.
    * ``callback_url`` — where CometAPI posts task updates for ``/runway/pro/*`` creates
      (a request's own wins); None sends the inert ``https://callback.invalid/``.
    * ``callback_token`` — the secret appended to ``callback_url`` as ``?token=``; give a
      stable one (≥ 16 characters) when callbacks must reach a restarted or another worker.
    * ``session`` — an ``aiohttp.ClientSession`` to borrow for API requests (not closed by
      the client). Ignored with ``transport``.
    * ``retry`` — a ``RetryPolicy``: how creates that certainly were not accepted, and
      downloads, are retried.
    * ``poll`` — a ``PollPolicy``: how tasks are polled, and the shared request rate.
    * ``journal`` — a path (SQLite), a ``postgresql://`` URL, or a ``Journal``: creates and
      task ids made durable, so nothing is paid twice or lost across restarts.
    * ``http_timeouts`` — an ``aiohttp.ClientTimeout`` for API requests (default transport).
    * ``transport`` — any object with ``async send(HTTPRequest) -> HTTPResponse`` and
      ``async aclose()``; default ``AiohttpTransport`` (honours ``HTTP(S)_PROXY``).
      ``cometrunway.testing.MockTransport`` answers from a function, in memory.
    * ``on_event`` — called with every ``Event`` (see ``cometrunway.events``); an exception
      it raises is logged and goes no further.
    * ``clock``, ``sleep`` — monotonic time and sleeping, injectable for simulations.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        runway_version: str | None = DEFAULT_RUNWAY_VERSION,
        callback_url: str | None = None,
        callback_token: str | None = None,
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen value
        poll: PollPolicy = PollPolicy(),  # noqa: B008 - frozen value
        journal: str | os.PathLike[str] | Journal | None = None,
        http_timeouts: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        transport: Transport | None = None,
        on_event: Callable[[Event], object] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        check_options(
            api_key=api_key,
            base_url=base_url,
            callback_url=callback_url,
            callback_token=callback_token,
            retry=retry,
            poll=poll,
            transport=transport,
            session=session,
            journal=journal,
        )
        self._api_key = api_key.strip()
        self._callback_token = callback_token or secrets.token_urlsafe(_CALLBACK_TOKEN_BYTES)
        self._base_url = base_url.rstrip("/")
        self._runway_version = runway_version
        self._callback_url = callback_url
        self._retry = retry
        self._journal_spec = journal
        self._journal: Journal | None = None
        self._clock = clock
        self._state = _State.NEW
        self._group: asyncio.TaskGroup | None = None
        self._poller_task: asyncio.Task[None] | None = None

        self._transport: Transport = transport or AiohttpTransport(
            self._base_url, session=session, timeout=http_timeouts
        )
        self._budget = RequestBudget(
            poll.requests_per_second,
            clock=clock,
            sleep=sleep,
            max_retry_after=retry.max_retry_after,
        )
        # Every API request: paced by the one budget, and nothing it brings back holds the key.
        send = PacedSender(KeyGuard(self._transport.send, self._api_key), self._budget).send
        self._source = ApiTaskSource(
            send, api_key=self._api_key, runway_version=self._runway_version
        )
        self._events = EventHub(on_event)
        self._observer = TaskObserver(self._events)
        self._poller = Poller(self._source, poll, sink=self._observer, clock=clock, sleep=sleep)
        self._submitter = Submitter(
            send=send,
            retry=retry,
            events=self._events,
            follow=self._follow,
            spawn=self._spawn,
            clock=clock,
        )
        self._canceller = Canceller(
            send,
            api_key=self._api_key,
            runway_version=self._runway_version,
            journal=lambda: self._journal,
            lookup=self._poller.get,
            wake=self._poller.wake,
        )

    @staticmethod
    def journal_key(request: Request, key: str | None = None) -> str:
        """The key a journal files ``request`` under, as ``submit`` computes it: ``key`` when
        given, else a hash of the route and the body without ``callback_url`` (so the same
        generation asked twice has one key, whichever client asks)."""
        if not isinstance(request, REQUEST_TYPES):
            raise TypeError(
                f"journal_key() takes a request model such as TextToVideo, "
                f"got {type(request).__name__}"
            )
        return key or request_key(build_submit(request, api_key="-"))[0]

    @classmethod
    def from_env(cls, **kwargs: Unpack[ClientOptions]) -> Self:
        """A client keyed by ``COMETAPI_KEY`` (and ``COMETAPI_BASE_URL`` when set); takes
        ``Client``'s keyword options."""
        key = os.environ.get("COMETAPI_KEY", "").strip()
        if not key:
            raise ValueError(
                "COMETAPI_KEY is not set: export your CometAPI key, e.g. "
                "`export COMETAPI_KEY=sk-...`"
            )
        base_url = os.environ.get("COMETAPI_BASE_URL", "").strip()
        if base_url and "base_url" not in kwargs:
            kwargs["base_url"] = base_url
        return cls(key, **kwargs)

    def __repr__(self) -> str:
        return f"<Client {self._base_url} {self._state.value}>"

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._base_url

    @property
    def journal(self) -> Journal | None:
        """The open journal store, or None without one."""
        return self._journal

    @property
    def callback_token(self) -> str:
        """The secret this client puts in its callback URL (``?token=...``)."""
        return self._callback_token

    @property
    def callback_url(self) -> str | None:
        """The callback URL sent with ``/runway/pro/*`` creates, token included; None if the
        client has none (then the inert ``https://callback.invalid/`` is sent)."""
        if self._callback_url is None:
            return None
        return with_token(self._callback_url, self._callback_token)

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Self:
        if self._state is _State.OPEN:
            raise ClientStateError(
                "this Client is already open; use it in one `async with` block at a time"
            )
        if self._state is not _State.NEW:
            raise ClientStateError(
                "this Client was closed and cannot be reopened; create a new one"
            )
        try:
            if self._journal_spec is not None:
                self._journal = open_journal(self._journal_spec)
                await self._journal.open()
                self._submitter.journal = self._observer.journal = self._journal
            self._group = asyncio.TaskGroup()
            await self._group.__aenter__()
        except BaseException:
            await self._transport.aclose()
            self._state = _State.CLOSED
            raise
        self._poller_task = self._group.create_task(self._poller.run(), name="cometrunway-poller")
        self._state = _State.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        # CLOSING: no new work, but creates in flight land first (each is journaled and its
        # handle fails at once with how to follow it again); only then does the poller close.
        self._state = _State.CLOSING
        interrupted: BaseException | None = None
        if not isinstance(exc, asyncio.CancelledError):
            try:
                await self._submitter.drain()
            except BaseException as stop:  # cancelled while draining: close all the same
                interrupted = stop
                exc_type, exc, tb = type(stop), stop, stop.__traceback__
        self._state = _State.CLOSED
        pending = self._poller.statistics().tracked
        if pending:
            log.info("client closing with %d task(s) still running", pending)
        self._poller.close(self._closed_error())
        self._events.close()
        if self._poller_task is not None:
            self._poller_task.cancel()
        try:
            assert self._group is not None
            if isinstance(exc, Exception):
                # The block's own error propagates as it is, never wrapped in a group; the
                # group still raises a poller failure.
                exc_type, exc, tb = None, None, None
            await self._group.__aexit__(exc_type, exc, tb)
        finally:
            try:
                if self._journal is not None:
                    await self._journal.close()
            finally:
                await self._transport.aclose()
        if interrupted is not None:
            raise interrupted
        return None

    def _closed_error(self, task_id: str | None = None) -> ClientStateError:
        again = "client.track(task_id)" if task_id is None else f"client.track({task_id!r})"
        if self._journal_spec is not None:
            again += " or client.resume()"
        which = "this task" if task_id is None else f"task {task_id}"
        return ClientStateError(
            f"the client closed before {which} finished; its id is still valid: "
            f"follow it again with {again}"
        )

    def _check_open(self) -> asyncio.TaskGroup:
        if self._state is _State.NEW:
            raise ClientStateError(
                "the Client is not open: use `async with Client(...) as client:` first"
            )
        if self._state is _State.CLOSING:
            raise ClientStateError("the Client is closing: no new requests are sent")
        if self._state is _State.CLOSED or self._group is None:
            raise ClientStateError("the Client is closed; create a new one")
        return self._group

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` as a child of the client's group (refused unless open)."""
        try:
            group = self._check_open()
        except ClientStateError:
            work.close()
            raise
        return group.create_task(work)

    # ---------------------------------------------------------------- submits

    async def submit(
        self, request: Request, *, key: str | None = None, label: str | None = None
    ) -> TaskHandle:
        """Create the task and return a handle the poller follows.

        With a journal, a request already journaled with a task id returns that task's handle
        instead of paying twice (``key`` overrides the body hash, e.g. to ask for the same
        prompt twice on purpose). Raises ``AmbiguousSubmitError`` when the create may have
        been accepted, and the ``APIError`` the server gave when it refused.
        """
        self._check_open()
        if not isinstance(request, REQUEST_TYPES):
            raise TypeError(
                f"submit() takes a request model such as TextToVideo, got {type(request).__name__}"
            )
        http = build_submit(
            request,
            api_key=self._api_key,
            runway_version=self._runway_version,
            callback_url=self.callback_url,
        )
        journal_key = (key or request_key(http)[0]) if self._journal is not None else None
        return await self._submitter.create(request, http, journal_key, label)

    async def submit_many(
        self,
        requests: Iterable[Request],
        *,
        max_concurrency: int = 8,
        keys: Sequence[str | None] | None = None,
        labels: Sequence[str | None] | None = None,
    ) -> list[TaskHandle]:
        """Submit every request (at most ``max_concurrency`` at a time), handles in input order.

        Never fails fast: every request is attempted. If any failed, raises
        ``BatchSubmitError`` whose ``handles`` holds the handle or None per input and whose
        exceptions carry ``.index`` (the input position). Cancelling mid-batch leaves every
        task already created tracked (and journaled).
        """
        check_concurrency(max_concurrency)
        items = listed(requests, "request models such as TextToVideo")
        for name, seq in (("keys", keys), ("labels", labels)):
            if seq is not None and len(seq) != len(items):
                raise ValueError(f"{name} must have one entry per request ({len(items)})")
        self._check_open()

        def submit_one(index: int, request: Request) -> Awaitable[TaskHandle]:
            return self.submit(
                request,
                key=keys[index] if keys is not None else None,
                label=labels[index] if labels is not None else None,
            )

        handles, errors = await attempt_each(
            items,
            submit_one,
            max_concurrency,
            note=lambda index, request: f"batch input {index}: {type(request).__name__}",
        )
        if errors:
            raise BatchSubmitError(
                f"{len(errors)} of {len(items)} requests failed to submit", errors, handles
            )
        return [h for h in handles if h is not None]

    # ---------------------------------------------------------------- following

    def _follow(
        self, task_id: str, route: PollRoute, submitted_at: float | None = None
    ) -> TaskHandle:
        """The handle of a task to follow. While closing (a create that landed late: its id
        is journaled already), the handle fails at once saying how to follow it again."""
        existing = self._poller.get(task_id)
        if existing is not None:
            return existing
        handle = TaskHandle(
            task_id,
            poll_route=route,
            download=self._download_for_handle,
            cancel=self._canceller.cancel,
        )
        if self._state is not _State.OPEN:
            log.warning("task %s was created while the client was closing", task_id)
            handle._fail(self._closed_error(task_id))
            return handle
        return self._poller.track(handle, submitted_at=submitted_at)

    def track(self, task_id: str, *, route: PollRoute = "feed") -> TaskHandle:
        """Follow a task created elsewhere (``route`` "feed" for ``/runway/pro/*`` tasks,
        "tasks" for ``/runwayml/v1/*``). Returns the existing handle if already followed."""
        group = self._check_open()
        task_id, route = check_task_id(task_id), check_poll_route(route)
        known = self._poller.get(task_id)
        if known is not None:
            return known
        # A fresh id may not be visible yet: it gets the full not-found grace (§6 C14).
        handle = self._follow(task_id, route)
        if self._journal is not None:
            group.create_task(self._journal.track(task_id, poll_route=route))
        return handle

    async def resume(self) -> list[TaskHandle]:
        """Handles for every journaled task that has an id and is not finished."""
        self._check_open()
        if self._journal is None:
            raise ClientStateError("resume() needs a journal: Client(journal='run.sqlite')")
        return await _reconcile.resume(
            self._journal, self._follow, clock=self._clock, wall=time.time
        )

    async def ambiguous(self) -> list[JournalEntry]:
        """Journal rows whose create may have reached the server: settle each one."""
        self._check_open()
        if self._journal is None:
            return []
        return await self._journal.ambiguous()

    async def settle(
        self, key: str, *, task_id: str | None = None, resubmit: bool = False
    ) -> TaskHandle | None:
        """Settle an ambiguous row: attach the ``task_id`` you found (returns its handle), or
        ``resubmit=True`` to let the next submit of that request create it again."""
        self._check_open()
        if self._journal is None:
            raise ClientStateError("settle() needs a journal: Client(journal='run.sqlite')")
        return await _reconcile.settle(
            self._journal, self._follow, key, task_id=task_id, resubmit=resubmit
        )

    async def settle_all(
        self, *, resubmit: bool = False, task_ids: Mapping[str, str] | None = None
    ) -> list[TaskHandle]:
        """Settle many ambiguous rows, each by explicit choice: ``task_ids`` ({key: task_id})
        attaches the tasks you found (their handles are returned); ``resubmit=True`` lets the
        next submit create every other ambiguous row again. Nothing is resubmitted by default.
        See ``cometrunway.journal.settle_all``."""
        self._check_open()
        if self._journal is None:
            raise ClientStateError("settle_all() needs a journal: Client(journal='run.sqlite')")
        return await settle_all(
            self._journal,
            lambda task_id, route: self._follow(task_id, "tasks" if route == "tasks" else "feed"),
            task_ids=task_ids,
            resubmit=resubmit,
        )

    def as_completed(self, handles: Iterable[TaskHandle]) -> AsyncIterator[TaskHandle]:
        """Yield each handle once, as it finishes (succeeded or failed)."""
        return as_completed(handles)

    async def fetch(self, task_id: str, *, route: PollRoute = "feed") -> Task:
        """Poll one task once, now, and return its snapshot (it need not be followed)."""
        self._check_open()
        return await self._source.fetch(task_id, route)

    async def cancel(self, task_id: str, *, route: PollRoute | None = None) -> None:
        """Ask the server to cancel a ``/runwayml/v1/*`` task (``DELETE
        /runwayml/v1/tasks/{id}``); ``route`` defaults to the followed handle's, else "tasks".
        Raises ``CancelNotSupported`` on a 404/405 or a ``/runway/pro/*`` task. The task is
        not assumed stopped: its handle ends when a poll says CANCELLED (see
        ``TaskHandle.cancel``)."""
        self._check_open()
        await self._canceller.cancel(task_id, route)

    def wake(self, task_id: str) -> bool:
        """Poll this task now (a callback says it changed); False if it is not followed."""
        return self._poller.wake(task_id)

    def statistics(self) -> ClientStatistics:
        """Counts since the client opened: submits, retries, 429s, and the poller's side."""
        return ClientStatistics(
            rate_limited=self._budget.rate_limited,
            request_rate=self._budget.rate,
            poller=self._poller.statistics(),
            **self._submitter.counts,
        )

    def events(self) -> AsyncIterator[Event]:
        """Every event from now on (one reader per call), until the client closes."""
        return self._events.stream()

    # ---------------------------------------------------------------- outputs

    async def download(
        self,
        task: Task | TaskHandle,
        dest: str | os.PathLike[str],
        *,
        progress: Callable[[int, int | None], object] | None = None,
        route: PollRoute | None = None,
    ) -> list[Path]:
        """Stream a finished task's outputs to ``dest`` (a folder, or a file path).

        ``route`` is where to re-poll the task once if a URL has expired (a handle knows its
        own; None guesses). See ``cometrunway.download.download_task``.
        """
        from .download import download_task

        self._check_open()
        if isinstance(task, TaskHandle):
            route = route or task.poll_route
            task = await task
        paths: list[Path] = await download_task(
            self, task, Path(dest), progress=progress, route=route, retry=self._retry
        )
        return paths

    async def _download_for_handle(
        self,
        task: Task,
        route: PollRoute,
        dest: str | os.PathLike[str],
        progress: Callable[[int, int | None], Any] | None,
    ) -> list[Path]:
        return await self.download(task, dest, progress=progress, route=route)

    async def download_many(
        self,
        tasks: Iterable[Task | TaskHandle],
        dest: str | os.PathLike[str],
        *,
        max_concurrency: int = 4,
    ) -> list[list[Path]]:
        """Download several tasks into the folder ``dest``; paths per task, in input order.
        See ``cometrunway.download.download_many`` (raises ``BatchDownloadError``)."""
        from .download import download_many

        self._check_open()
        return await download_many(
            self, tasks, Path(dest), max_concurrency=max_concurrency, retry=self._retry
        )

    def callback_app(
        self, path: str = "/runway/callback", *, max_body_bytes: int = 256 * 1024
    ) -> web.Application:
        """An ``aiohttp.web.Application`` receiving this client's callbacks on ``POST path``;
        each one wakes the poller for its task. See ``cometrunway.webhooks.aiohttp_app``."""
        from .webhooks import aiohttp_app

        return aiohttp_app(self, path=path, max_body_bytes=max_body_bytes)
