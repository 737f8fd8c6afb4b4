"""``Client``: the ``async with`` object users hold.

It owns the transport and runs the one poller as a child of a ``TaskGroup``, so a poller bug
surfaces from the ``async with`` instead of vanishing. Submits go through the pure core's
judgement: only what certainly was not accepted is retried (with backoff); a create that may
have reached the server raises ``AmbiguousSubmitError`` and, with a journal, stays listed
until the user settles it. Every request, submit or poll, draws from one rate budget.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import backoff
from attrs import frozen

from ._batching import attempt_each, check_concurrency
from .budget import Clock, RequestBudget, Sleep
from .errors import (
    AmbiguousSubmitError,
    BatchSubmitError,
    ClientStateError,
    CometRunwayError,
    JournalError,
    TaskNotFound,
)
from .events import (
    AmbiguousSubmit,
    Event,
    EventHub,
    StatusChanged,
    SubmitRejected,
    Submitted,
    TaskFinished,
    TaskLost,
)
from .handles import TaskHandle
from .journal import EntryState, Journal, JournalEntry, open_journal, settle_all
from .models import REQUEST_TYPES, PollRoute, Request, Task
from .policies import PollPolicy, RetryPolicy
from .poller import Poller, PollerStatistics
from .protocol import (
    DEFAULT_RUNWAY_VERSION,
    HTTPRequest,
    SubmitDisposition,
    build_poll,
    build_submit,
    parse_poll,
    parse_submit,
    submit_disposition,
)
from .transport import DEFAULT_TIMEOUT, Transport

__all__ = ["Client", "ClientStatistics", "request_key"]

log = logging.getLogger("cometrunway")

DEFAULT_BASE_URL = "https://api.cometapi.com"


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
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


def request_key(request: HTTPRequest) -> tuple[str, str]:
    """``(idempotency key, canonical body)`` of a create request.

    The key is a hash of the route and the canonical JSON body without ``callback_url``
    (which carries a per-client secret), so the same generation asked twice has one key.
    """
    body = request.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "callback_url"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(f"{request.path}\n{canonical}".encode()).hexdigest()
    return f"sha256:{digest[:40]}", canonical


def _unjournaled(task_id: str, key: str, cause: JournalError) -> JournalError:
    error = JournalError(
        f"task {task_id} was created (journal key {key!r}) but the journal could not record "
        f"it: {cause}; follow it with client.track({task_id!r})"
    )
    error.__cause__ = cause
    return error


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Waiters may be gone; the submitter re-raises the error itself.
    if not future.cancelled():
        future.exception()


def _retryable(error: Exception) -> bool:
    """Whether a failed create certainly was not accepted, so sending it again is safe."""
    return submit_disposition(error) is SubmitDisposition.RETRY


class Client:
    """An asyncio client for CometAPI's Runway routes.

    ::

        async with Client.from_env() as client:
            handle = await client.submit(TextToVideo("a cat on a skateboard"))
            task = await handle
            print(task.video_url)

    Options are keyword-only; nothing is read from the environment here (``from_env``
    does that). A client is opened once: reopening a closed client raises
    ``ClientStateError``.
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
        on_event: Callable[[Event], object] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError(
                "api_key must be your CometAPI key (a non-empty string); "
                "Client.from_env() reads it from COMETAPI_KEY"
            )
        if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
            raise ValueError(f"base_url must start with https:// or http://, got {base_url!r}")
        if callback_url is not None and not callback_url.startswith(("https://", "http://")):
            raise ValueError(
                f"callback_url must start with https:// or http://, got {callback_url!r}"
            )
        if not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, got {retry!r}")
        if not isinstance(poll, PollPolicy):
            raise TypeError(f"poll must be a PollPolicy, got {poll!r}")
        self._api_key = api_key.strip()
        # A secret in the callback URL lets the receiver tell CometAPI's posts from forgeries
        # (callbacks are unsigned, wire reference §4). Give a stable one when callbacks must
        # survive a restart (resume) or reach other worker processes.
        if callback_token is not None and (
            not isinstance(callback_token, str) or len(callback_token) < 16
        ):
            raise ValueError("callback_token must be a secret string of at least 16 characters")
        self._callback_token = callback_token or secrets.token_urlsafe(24)
        self._base_url = base_url.rstrip("/")
        self._runway_version = runway_version
        self._callback_url = callback_url
        self._retry = retry
        self._poll_policy = poll
        self._journal_spec = journal
        self._journal: Journal | None = None
        self._clock = clock
        self._sleep = sleep
        self._budget = RequestBudget(poll.requests_per_second, clock=clock, sleep=sleep)
        self._transport = Transport(
            self._base_url, session=session, timeout=http_timeouts, budget=self._budget
        )
        self._session = session
        self._poller = Poller(
            self._fetch_task,
            poll,
            on_update=self._task_updated,
            on_finish=self._task_finished,
            clock=clock,
            sleep=sleep,
        )
        self._events = EventHub(on_event)
        self._in_flight: dict[str, asyncio.Future[TaskHandle]] = {}
        self._state = _State.NEW
        self._group: asyncio.TaskGroup | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller_task: asyncio.Task[None] | None = None
        self._counts = dict.fromkeys(("submits", "submit_retries", "ambiguous_submits"), 0)
        self._resend_create = backoff.on_exception(
            retry.waits,
            CometRunwayError,
            max_tries=retry.max_tries,
            giveup=lambda exc: not _retryable(exc),
            jitter=None,
            on_backoff=self._on_submit_backoff,
            logger=None,
        )(self._create_again)

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
    def from_env(cls, **kwargs: Any) -> Self:
        """A client keyed by ``COMETAPI_KEY`` (and ``COMETAPI_BASE_URL`` when set)."""
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
        parts = urlsplit(self._callback_url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query = [(k, v) for k, v in query if k != "token"] + [("token", self._callback_token)]
        return urlunsplit(parts._replace(query=urlencode(query)))

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Self:
        if self._state is _State.OPEN:
            raise ClientStateError(
                "this Client is already open; use it in one `async with` block at a time"
            )
        if self._state is _State.CLOSED:
            raise ClientStateError(
                "this Client was closed and cannot be reopened; create a new one"
            )
        self._loop = asyncio.get_running_loop()  # asking each time costs a getpid() call
        await self._transport.open()
        try:
            if self._journal_spec is not None:
                self._journal = open_journal(self._journal_spec)
                await self._journal.open()
            self._group = asyncio.TaskGroup()
            await self._group.__aenter__()
        except BaseException:
            await self._transport.close()
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
        self._state = _State.CLOSED
        pending = self._poller.statistics().tracked
        if pending:
            log.info("client closing with %d task(s) still running", pending)
        self._poller.close(
            ClientStateError(
                "the client closed before this task finished; its id is still valid: "
                "follow it again with client.track(task_id)"
                + (" or client.resume()" if self._journal_spec is not None else "")
            )
        )
        self._events.close()
        if self._poller_task is not None:
            self._poller_task.cancel()
        try:
            assert self._group is not None
            if isinstance(exc, Exception) and not isinstance(exc, asyncio.CancelledError):
                # The block's own error propagates as it is, never wrapped in a group; the
                # group still waits for in-flight creates and raises a poller failure.
                exc_type, exc, tb = None, None, None
            await self._group.__aexit__(exc_type, exc, tb)
            return None
        finally:
            try:
                if self._journal is not None:
                    await self._journal.close()
            finally:
                await self._transport.close()

    def _check_open(self) -> asyncio.TaskGroup:
        if self._state is _State.NEW:
            raise ClientStateError(
                "the Client is not open: use `async with Client(...) as client:` first"
            )
        if self._state is _State.CLOSED or self._group is None:
            raise ClientStateError("the Client is closed; create a new one")
        return self._group

    # ---------------------------------------------------------------- requests

    async def _fetch_task(self, task_id: str, route: PollRoute) -> Task:
        request = build_poll(
            task_id, route, api_key=self._api_key, runway_version=self._runway_version
        )
        return parse_poll(await self._transport.send(request), task_id=task_id)

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
        journal_key: str | None = None
        if self._journal is not None:
            journal_key, canonical = request_key(http)
            journal_key = key or journal_key
            # The same request submitted twice at once in this process: the second waits for
            # the first's outcome instead of racing it to the server.
            running = self._in_flight.get(journal_key)
            if running is not None:
                return await asyncio.shield(running)
            running = asyncio.get_running_loop().create_future()
            running.add_done_callback(_retrieve)
            self._in_flight[journal_key] = running
            try:
                handle = await self._submit_journaled(http, request, journal_key, canonical, label)
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError):
                    running.cancel()
                else:
                    running.set_exception(exc)
                raise
            else:
                running.set_result(handle)
                return handle
            finally:
                del self._in_flight[journal_key]
        return await self._send_and_classify(http, request, None, label)

    async def _submit_journaled(
        self, http: HTTPRequest, request: Request, key: str, canonical: str, label: str | None
    ) -> TaskHandle:
        assert self._journal is not None
        # One durable step claims the row and marks it SENDING before any byte leaves.
        entry, claimed = await self._journal.reserve_sending(
            key,
            request_type=type(request).__name__,
            path=http.path,
            body=canonical,
            poll_route=request.poll_route,
            label=label,
        )
        if not claimed:
            existing = self._existing(entry, request)
            self._events.emit(
                Submitted(
                    existing.task_id,
                    entry.key,
                    type(request).__name__,
                    label or entry.label,
                    reused=True,
                )
            )
            return existing
        return await self._send_and_classify(http, request, key, label, claimed=True)

    async def _send_and_classify(
        self,
        http: HTTPRequest,
        request: Request,
        journal_key: str | None,
        label: str | None,
        *,
        claimed: bool = False,
    ) -> TaskHandle:
        self._counts["submits"] += 1
        try:
            try:
                # The first attempt runs bare, the usual case; only a failure that certainly
                # was not accepted goes to backoff, which resends as the RetryPolicy says.
                return await self._create_once(http, request, journal_key, label, claimed)
            except CometRunwayError as exc:
                if self._retry.max_tries == 1 or not _retryable(exc):
                    raise
                first_failure = [exc]
            return await self._resend_create(first_failure, http, request, journal_key, label)
        except CometRunwayError as exc:
            request_type = type(request).__name__
            if submit_disposition(exc) is SubmitDisposition.AMBIGUOUS:
                self._counts["ambiguous_submits"] += 1
                self._events.emit(AmbiguousSubmit(journal_key, request_type, exc, label))
                raise AmbiguousSubmitError(
                    f"{http.path}: the create may have been accepted ({exc}); it was not "
                    "retried, so as not to pay twice"
                    + (
                        f". It is journaled as ambiguous under key {journal_key!r}: "
                        "see client.ambiguous()"
                        if journal_key
                        else ""
                    ),
                    request=request,
                    key=journal_key,
                ) from exc
            self._events.emit(SubmitRejected(journal_key, request_type, exc, label))
            raise

    def _existing(self, entry: JournalEntry, request: Request) -> TaskHandle:
        """The task of a journaled request, or why it cannot be sent again."""
        if entry.task_id:
            log.info(
                "request %s already has task %s: not submitting again", entry.key, entry.task_id
            )
            return self._follow(entry.task_id, request.poll_route)
        if entry.state in (EntryState.SENDING, EntryState.AMBIGUOUS):
            raise AmbiguousSubmitError(
                f"request {entry.key} was sent before and its outcome is unknown; if you found "
                f"its task call client.settle({entry.key!r}, task_id=...), or "
                f"client.settle({entry.key!r}, resubmit=True) to pay for it again on purpose",
                request=request,
                key=entry.key,
            )
        raise JournalError(f"journal row {entry.key!r} is {entry.state}: cannot reuse it")

    async def _create_again(
        self,
        first_failure: list[CometRunwayError],
        http: HTTPRequest,
        request: Request,
        key: str | None,
        label: str | None,
    ) -> TaskHandle:
        if first_failure:
            # Replays the first attempt's failure, so that backoff counts it as try 1 and
            # takes its wait (and any Retry-After) from it.
            raise first_failure.pop()
        return await self._create_once(http, request, key, label, already_sending=False)

    def _create_once(
        self,
        http: HTTPRequest,
        request: Request,
        key: str | None,
        label: str | None,
        already_sending: bool,
    ) -> asyncio.Future[TaskHandle]:
        """Start one create attempt; the future gets its handle or its error.

        The attempt runs as a child of the client's group, not in the caller: if the caller
        is cancelled mid-request, which cancels only this future, an answer that arrives is
        still journaled and tracked.
        """
        group = self._check_open()
        assert self._loop is not None  # set when opened
        outcome: asyncio.Future[TaskHandle] = self._loop.create_future()
        group.create_task(self._attempt(outcome, http, request, key, label, already_sending))
        return outcome

    async def _attempt(
        self,
        outcome: asyncio.Future[TaskHandle],
        http: HTTPRequest,
        request: Request,
        key: str | None,
        label: str | None,
        already_sending: bool,
    ) -> None:
        journal = self._journal
        try:
            if journal is not None and key is not None and not already_sending:
                await journal.mark_sending(key)  # durable before the bytes may leave
            submitted_at = self._clock()
            try:
                task_id = parse_submit(await self._transport.send(http))
            except CometRunwayError as exc:
                if journal is not None and key is not None:
                    if submit_disposition(exc) is SubmitDisposition.AMBIGUOUS:
                        await journal.mark_ambiguous(key, str(exc))
                    else:
                        await journal.mark_rejected(key, str(exc), getattr(exc, "code", None))
                if not outcome.done():
                    outcome.set_exception(exc)
                return
            except BaseException:
                if journal is not None and key is not None:
                    await asyncio.shield(journal.mark_ambiguous(key, "interrupted while sending"))
                raise
            if journal is not None and key is not None:
                # Durable before visible: the id is on disk before any handle is handed out;
                # concurrent creates share one commit (group commit on the journal thread).
                try:
                    await journal.mark_submitted(key, task_id)
                except JournalError as exc:
                    # The task exists and the journal cannot say so: the caller must hear
                    # its id (never lose a task id), and the client keeps running.
                    log.exception("created task %s but could not journal it", task_id)
                    if not outcome.done():
                        outcome.set_exception(_unjournaled(task_id, key, exc))
                    return
            log.info("created task %s (%s)", task_id, type(request).__name__)
            handle = self._follow(task_id, request.poll_route, submitted_at=submitted_at)
            if self._events.active:
                self._events.emit(Submitted(task_id, key, type(request).__name__, label))
        except BaseException as exc:
            # A bug, or the client closing mid-attempt: the caller hears it too, and the
            # group sees it.
            if not outcome.done():
                if isinstance(exc, asyncio.CancelledError):
                    outcome.cancel()
                else:
                    outcome.set_exception(exc)
            raise
        if not outcome.done():
            outcome.set_result(handle)

    def _on_submit_backoff(self, details: Any) -> None:
        self._counts["submit_retries"] += 1
        log.warning(
            "create not accepted (%s); retry %d in %.1fs",
            details.get("exception"),
            details.get("tries", 0),
            details.get("wait", 0.0),
        )

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
        items = list(requests)
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
        self, task_id: str, route: PollRoute, *, submitted_at: float | None = None
    ) -> TaskHandle:
        existing = self._poller.get(task_id)
        if existing is not None:
            return existing
        handle = TaskHandle(task_id, poll_route=route, client=self)
        return self._poller.track(handle, submitted_at=submitted_at)

    def track(self, task_id: str, *, route: PollRoute = "feed") -> TaskHandle:
        """Follow a task created elsewhere (``route`` "feed" for ``/runway/pro/*`` tasks,
        "tasks" for ``/runwayml/v1/*``). Returns the existing handle if already followed."""
        group = self._check_open()
        if not isinstance(task_id, str) or not task_id.strip():
            raise ValueError(f"task_id must be a non-empty string, got {task_id!r}")
        if route not in ("feed", "tasks"):
            raise ValueError(f"route must be 'feed' or 'tasks', got {route!r}")
        task_id = task_id.strip()
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
        entries = await self._journal.unfinished()
        now_mono, now_wall = self._clock(), time.time()
        handles = []
        for entry in entries:
            if not entry.task_id:
                continue
            # The not-found grace counts from the real submit, before the restart.
            created = entry.submitted_at or entry.created_at
            submitted_at = now_mono - max(0.0, now_wall - created)
            route: PollRoute = "tasks" if entry.poll_route == "tasks" else "feed"
            handles.append(self._follow(entry.task_id, route, submitted_at=submitted_at))
        return handles

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
        if (task_id is None) == (not resubmit):
            raise ValueError("settle() takes exactly one of task_id=... or resubmit=True")
        entry = await self._journal.get(key)
        if entry is None:
            raise KeyError(f"no journal row with key {key!r}")
        if task_id is not None:
            await self._journal.attach_task(key, task_id)
            route: PollRoute = "tasks" if entry.poll_route == "tasks" else "feed"
            return self._follow(task_id, route)
        await self._journal.release(key)
        return None

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

    async def as_completed(self, handles: Iterable[TaskHandle]) -> AsyncIterator[TaskHandle]:
        """Yield each handle once, as it finishes (succeeded or failed)."""
        unique = list(dict.fromkeys(handles))
        finished: asyncio.Queue[TaskHandle] = asyncio.Queue()
        for handle in unique:
            handle.add_done_callback(finished.put_nowait)
        for _ in unique:
            yield await finished.get()

    async def fetch(self, task_id: str, *, route: PollRoute = "feed") -> Task:
        """Poll one task once, now, and return its snapshot (it need not be followed)."""
        self._check_open()
        return await self._fetch_task(task_id, route)

    def wake(self, task_id: str) -> bool:
        """Poll this task now (a callback says it changed); False if it is not followed."""
        return self._poller.wake(task_id)

    def statistics(self) -> ClientStatistics:
        """Counts since the client opened: submits, retries, 429s, and the poller's side."""
        return ClientStatistics(
            rate_limited=self._budget.rate_limited,
            request_rate=self._budget.rate,
            poller=self._poller.statistics(),
            **self._counts,
        )

    # ---------------------------------------------------------------- poller hooks

    def events(self) -> AsyncIterator[Event]:
        """Every event from now on (one reader per call), until the client closes."""
        return self._events.stream()

    def _task_updated(
        self, handle: TaskHandle, old: Task | None, new: Task
    ) -> Awaitable[None] | None:
        if old is not None and (old.status, old.progress, old.outputs) == (
            new.status,
            new.progress,
            new.outputs,
        ):
            return None
        if self._events.active:
            if new.status.is_terminal:
                self._events.emit(TaskFinished(new.task_id, new.status, new))
            else:
                self._events.emit(StatusChanged(new.task_id, new.status, new.progress, new))
        if self._journal is None:
            return None
        return self._journal.record_status(
            new.task_id,
            status=new.status.value,
            progress=new.progress,
            outputs=new.all_urls,
            error=new.error,
            error_code=new.error_code,
            terminal=new.status.is_terminal,
        )

    def _task_finished(
        self, handle: TaskHandle, error: BaseException | None
    ) -> Awaitable[None] | None:
        if error is not None and not (handle.task is not None and handle.task.is_terminal):
            self._events.emit(TaskLost(handle.task_id, error))
        if self._journal is not None and isinstance(error, TaskNotFound):
            return self._journal.record_status(
                handle.task_id,
                status="NOT_FOUND",
                progress=None,
                outputs=(),
                error=str(error),
                error_code="task_not_exist",
                terminal=True,
            )
        return None

    # ---------------------------------------------------------------- outputs

    async def download(
        self,
        task: Task | TaskHandle,
        dest: str | os.PathLike[str],
        *,
        progress: Any = None,
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
    ) -> aiohttp.web.Application:
        """An ``aiohttp.web.Application`` receiving this client's callbacks on ``POST path``;
        each one wakes the poller for its task. See ``cometrunway.webhooks.aiohttp_app``."""
        from .webhooks import aiohttp_app

        return aiohttp_app(self, path=path, max_body_bytes=max_body_bytes)
