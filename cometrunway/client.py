"""``Client``: the ``async with`` object users hold, and its public verbs.

Options, wiring and lifecycle live in ``_client_core``; each verb here delegates to one of
the pieces wired there.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Self, TypedDict, Unpack

import aiohttp
from attrs import frozen

from . import _reconcile
from ._batching import as_completed, attempt_each, check_concurrency, listed
from ._client_core import ClientCore
from ._options import DEFAULT_BASE_URL
from .budget import Clock, Sleep
from .errors import BatchSubmitError, ClientStateError
from .events import Event
from .handles import TaskHandle
from .journal import Journal, JournalEntry, settle_all
from .journal._keys import request_key
from .models import REQUEST_TYPES, PollRoute, Request, Task
from .policies import FleetPolicy, PollPolicy, RetryPolicy
from .poller import PollerStatistics
from .protocol import build_submit, check_poll_route, check_task_id
from .transport import Transport

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["DEFAULT_BASE_URL", "Client", "ClientOptions", "ClientStatistics", "request_key"]


class ClientOptions(TypedDict, total=False):
    """``Client``'s keyword options, as ``Client.from_env(**options)`` takes them."""

    base_url: str
    runway_version: str | None
    callback_url: str | None
    callback_token: str | None
    session: aiohttp.ClientSession | None
    retry: RetryPolicy
    poll: PollPolicy
    fleet: FleetPolicy
    journal: str | os.PathLike[str] | Journal | None
    http_timeouts: aiohttp.ClientTimeout
    transport: Transport | None
    on_event: Callable[[Event], object] | None
    clock: Clock
    sleep: Sleep
    wall_clock: Clock


@frozen
class ClientStatistics:
    """Counts since the client opened; ``poller`` has the polling side."""

    submits: int
    submit_retries: int
    ambiguous_submits: int
    rate_limited: int
    request_rate: float
    poller: PollerStatistics


class Client(ClientCore):
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
    * ``fleet`` — a ``FleetPolicy``: poll leases, takeovers and waits when several workers
      share one PostgreSQL journal (see :doc:`/workers`); unused with any other journal.
    * ``journal`` — a path (SQLite), a ``postgresql://`` URL, or a ``Journal``: creates and
      task ids made durable, so nothing is paid twice or lost across restarts.
    * ``http_timeouts`` — an ``aiohttp.ClientTimeout`` for API requests (default transport).
    * ``transport`` — any object with ``async send(HTTPRequest) -> HTTPResponse`` and
      ``async aclose()``; default ``AiohttpTransport`` (honours ``HTTP(S)_PROXY``).
      ``cometrunway.testing.MockTransport`` answers from a function, in memory.
    * ``on_event`` — called with every ``Event`` (see ``cometrunway.events``); an exception
      it raises is logged and goes no further.
    * ``clock``, ``sleep`` — monotonic time and sleeping, injectable for simulations.
    * ``wall_clock`` — the time of day (``time.time``), against which journaled submit
      times and the server's timestamps are read; injectable for simulations.
    """

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

    def track(self, task_id: str, *, route: PollRoute = "feed") -> TaskHandle:
        """Follow a task created elsewhere (``route`` "feed" for ``/runway/pro/*`` tasks,
        "tasks" for ``/runwayml/v1/*``). Returns the existing handle if already followed."""
        group = self._check_open()
        task_id, route = check_task_id(task_id), check_poll_route(route)
        known = self._lookup(task_id)
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
            self._journal, self._follow, clock=self._clock, wall=self._wall_clock
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

    async def cancel(self, task_id: str, *, route: PollRoute | None = None) -> None:
        """Ask the server to cancel a ``/runwayml/v1/*`` task (``DELETE
        /runwayml/v1/tasks/{id}``); ``route`` defaults to the followed handle's, else "tasks".
        Raises ``CancelNotSupported`` on a 404/405 or a ``/runway/pro/*`` task. The task is
        not assumed stopped: its handle ends when a poll says CANCELLED (see
        ``TaskHandle.cancel``)."""
        self._check_open()
        await self._canceller.cancel(task_id, route)

    def wake(self, task_id: str) -> bool:
        """Poll this task now (a callback says it changed); False if it is not followed.
        With a fleet journal the worker that polls it does, whichever worker is woken: the
        request goes to the fleet (True), and an id no worker follows is ignored there."""
        return self._wake(task_id)

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
        session: aiohttp.ClientSession | None = None,
    ) -> list[Path]:
        """Stream a finished task's outputs to ``dest`` (a folder, or a file path).

        ``route`` is where to re-poll the task once if a URL has expired (a handle knows its
        own; None guesses). ``session`` is an aiohttp session to download with (yours: not
        closed here; it must carry no credentials — the output host is not CometAPI); by
        default a clean one that honours ``HTTP(S)_PROXY``/``NO_PROXY``. See
        ``cometrunway.download.download_task``.
        """
        self._check_open()
        if isinstance(task, TaskHandle):
            route = route or task.poll_route
            task = await task
        return await self._download_one(task, route, dest, progress, session)

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
        with self._guard.scrubbing():  # an output host may quote the key all the same
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
