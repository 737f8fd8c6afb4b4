"""The ``Client``'s lifecycle and wiring: its options, the pieces it connects, and its
states (NEW → OPEN → CLOSING → CLOSED). ``client.Client`` adds the public verbs.

The work is done by the pieces wired here: ``_submit.Submitter`` (one create, where "never
pay twice" is kept), ``poller.Poller`` fed by a ``TaskSource`` (``_source``) and writing to
a ``TaskSink`` (``_observer``), the transport seam (``transport``) paced by one
``RequestBudget``, and the journal (where "never lose a task id" is kept). The poller and
every create attempt run as children of one ``TaskGroup``, so their bugs surface from the
``async with``; user callbacks never run where their exceptions could end the client.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import secrets
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from ._cancel import Canceller
from ._fleet import Fleet, fleet_store
from ._keyguard import KeyGuard
from ._observer import TaskObserver
from ._options import DEFAULT_BASE_URL, check_options, with_token
from ._source import ApiTaskSource
from ._submit import Submitter
from .budget import Clock, PacedSender, RequestBudget, Sleep
from .errors import ClientStateError
from .events import Event, EventHub
from .handles import TaskHandle
from .journal import Journal, open_journal
from .models import PollRoute, Task
from .policies import FleetPolicy, PollPolicy, RetryPolicy
from .poller import Poller
from .protocol import DEFAULT_RUNWAY_VERSION
from .transport import DEFAULT_TIMEOUT, AiohttpTransport, Transport

__all__ = ["ClientCore"]

log: logging.Logger = logging.getLogger("cometrunway")

_CALLBACK_TOKEN_BYTES = 24  # a 32-character token
_CLOSING = "the Client is closing: no new requests are sent"


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSING = "closing"  # no new work; creates in flight still land (and are journaled)
    CLOSED = "closed"


class ClientCore:
    """Options, wiring and lifecycle of a ``Client`` (documented there)."""

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
        fleet: FleetPolicy = FleetPolicy(),  # noqa: B008 - frozen value
        journal: str | os.PathLike[str] | Journal | None = None,
        http_timeouts: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        transport: Transport | None = None,
        on_event: Callable[[Event], object] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Clock = time.time,
    ) -> None:
        check_options(
            api_key=api_key,
            base_url=base_url,
            callback_url=callback_url,
            callback_token=callback_token,
            retry=retry,
            poll=poll,
            fleet=fleet,
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
        self._wall_clock = wall_clock  # journal and server times are wall-clock times
        self._state = _State.NEW
        self._group: asyncio.TaskGroup | None = None
        self._poller_task: asyncio.Task[None] | None = None
        self._fleet_policy = fleet
        # Set at open when the journal is a fleet store (PostgreSQL): see ``_fleet``.
        self._fleet: Fleet | None = None
        self._fleet_task: asyncio.Task[None] | None = None
        self._sleep = sleep

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
        self._guard = KeyGuard(self._transport.send, self._api_key, also=[self._callback_token])
        send = PacedSender(self._guard, self._budget).send
        self._source = ApiTaskSource(
            send, api_key=self._api_key, runway_version=self._runway_version
        )
        self._events = EventHub(on_event)
        self._observer = TaskObserver(self._events)
        self._poller = Poller(
            self._source,
            poll,
            sink=self._observer,
            clock=clock,
            sleep=sleep,
            wall=wall_clock,
            max_retry_after=retry.max_retry_after,
        )
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
            lookup=self._lookup,
            wake=self._wake,
        )

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
                self._open_fleet(self._journal)
            self._group = asyncio.TaskGroup()
            await self._group.__aenter__()
        except BaseException:
            await self._transport.aclose()
            self._state = _State.CLOSED
            raise
        self._poller_task = self._group.create_task(self._poller.run(), name="cometrunway-poller")
        if self._fleet is not None:
            self._fleet_task = self._group.create_task(self._fleet.run(), name="cometrunway-fleet")
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
        # No request waits out a pause (up to max_retry_after) any more: one still waiting
        # for its slot, or a create between two attempts, fails unsent with the closing
        # error; requests already sent land as before.
        self._budget.close(lambda: ClientStateError(_CLOSING))
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
        if self._fleet is not None:
            if self._fleet_task is not None:
                self._fleet_task.cancel()
            await self._fleet.release()  # the others may claim these tasks at once
            self._fleet.close(self._closed_error)
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

    def _open_fleet(self, journal: Journal) -> None:
        """With a fleet store (checked once, here), follow tasks through the fleet and wait
        for a request another live worker is sending instead of calling it ambiguous."""
        store = fleet_store(journal)
        if store is None:
            return
        self._fleet = Fleet(
            store,
            self._poller,
            self._fleet_policy,
            new_handle=self._new_handle,
            clock=self._clock,
            wall=self._wall_clock,
            sleep=self._sleep,
            on_settled=self._observer.settled_elsewhere,
        )
        within = self._fleet_policy.sender_wait
        self._submitter.wait_sent = lambda key: store.wait_sent(key, within)

    def _lookup(self, task_id: str) -> TaskHandle | None:
        """The handle of a task this client follows (polled here, or through the fleet)."""
        handle = self._poller.get(task_id)
        if handle is None and self._fleet is not None:
            handle = self._fleet.get(task_id)
        return handle

    def _wake(self, task_id: str) -> bool:
        """Poll this task now; with a fleet, the worker that holds its lease does."""
        if self._fleet is not None:
            return self._fleet.wake(task_id)
        return self._poller.wake(task_id)

    def _new_handle(self, task_id: str, route: PollRoute) -> TaskHandle:
        return TaskHandle(
            task_id, poll_route=route, download=self._download_one, cancel=self._canceller.cancel
        )

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
            raise ClientStateError(_CLOSING)
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

    def _follow(
        self, task_id: str, route: PollRoute, submitted_at: float | None = None
    ) -> TaskHandle:
        """The handle of a task to follow. While closing (a create that landed late: its id
        is journaled already), the handle fails at once saying how to follow it again."""
        existing = self._lookup(task_id)
        if existing is not None:
            return existing
        handle = self._new_handle(task_id, route)
        if self._state is not _State.OPEN:
            log.warning("task %s was created while the client was closing", task_id)
            handle._fail(self._closed_error(task_id))
            return handle
        if self._fleet is not None:
            return self._fleet.follow(handle, submitted_at)
        return self._poller.track(handle, submitted_at=submitted_at)

    async def fetch(self, task_id: str, *, route: PollRoute = "feed") -> Task:
        """Poll one task once, now, and return its snapshot (it need not be followed)."""
        self._check_open()
        return await self._source.fetch(task_id, route)

    async def _download_one(
        self,
        task: Task,
        route: PollRoute | None,
        dest: str | os.PathLike[str],
        progress: Callable[[int, int | None], Any] | None,
        session: aiohttp.ClientSession | None = None,
    ) -> list[Path]:
        """Stream a finished task's outputs (what a handle's ``download()`` calls)."""
        from .download import download_task

        self._check_open()
        with self._guard.scrubbing():  # an output host may quote the key all the same
            paths: list[Path] = await download_task(
                self,
                task,
                Path(dest),
                progress=progress,
                route=route,
                retry=self._retry,
                session=session,
            )
        return paths
