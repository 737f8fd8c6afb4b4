"""One create, start to finish: where "never pay twice" is kept.

``Submitter.create`` reads top to bottom:

1. claim the journal row (SENDING is durable before any byte leaves; a row that already
   has a task returns that task instead of paying again);
2. send one attempt as a child of the client's task group, so a caller cancelled mid-request
   never loses an answer that arrives: the child journals the id and tracks the task;
3. classify a failure once with the pure core (``protocol.submit_disposition``);
4. let ``backoff`` resend only what certainly was not accepted (a closing client ends its
   wait between two attempts at once: nothing more is sent, the row stays rejected);
5. journal the outcome: the task id, or "ambiguous" / "rejected".

Same-key creates in flight at once in this process share one outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import backoff
from attrs import define

from .budget import Clock
from .errors import (
    AmbiguousSubmitError,
    ClientStateError,
    CometRunwayError,
    DecodeError,
    JournalError,
    UnjournaledTask,
)
from .events import AmbiguousSubmit, EventHub, SubmitRejected, Submitted
from .handles import TaskHandle
from .journal import EntryState, Journal, JournalEntry
from .journal._credits import record_credits
from .journal._keys import request_key
from .models import PollRoute, Request
from .policies import RetryPolicy
from .protocol import HTTPRequest, HTTPResponse, SubmitDisposition, submit_disposition
from .protocol.tasks import parse_created

__all__ = ["Submitter"]

log: logging.Logger = logging.getLogger("cometrunway")

Send = Callable[[HTTPRequest], Awaitable[HTTPResponse]]
Follow = Callable[[str, PollRoute, float | None], TaskHandle]
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


@define(eq=False)
class _Create:
    """One create in progress: what is sent, under which journal key, and how often."""

    request: Request
    http: HTTPRequest
    key: str | None  # the journal row (None: no journal)
    label: str | None
    attempts: int = 0
    # The task running backoff's loop while it waits before the next attempt (None during
    # an attempt): closing the client cancels that wait, never an attempt.
    waiting: asyncio.Task[Any] | None = None
    closed_while_waiting: bool = False


_CLOSED_WHILE_WAITING = (
    "the Client is closing: this create, refused and waiting to be sent again, was not sent "
    "again (its journal row, if any, is rejected: safe to submit later)"
)


def _not_accepted(error: Exception) -> bool:
    """Whether a failed create certainly was not accepted, so sending it again is safe."""
    return submit_disposition(error) is SubmitDisposition.RETRY


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Waiters may be gone; the submitter re-raises the error itself.
    if not future.cancelled():
        future.exception()


class Submitter:
    """Runs creates for one client. ``spawn`` starts a child of the client's task group and
    raises ``ClientStateError`` once the client is closing; ``follow`` hands out the handle
    of a created task."""

    def __init__(
        self,
        *,
        send: Send,
        retry: RetryPolicy,
        events: EventHub,
        follow: Follow,
        spawn: Spawn,
        clock: Clock,
    ) -> None:
        self._send = send
        self._events = events
        self._follow = follow
        self._spawn = spawn
        self._clock = clock
        self.journal: Journal | None = None  # set once the client opened it
        # With a fleet journal: the row of a key once its live sender is done sending.
        self.wait_sent: Callable[[str], Awaitable[JournalEntry | None]] | None = None
        self._in_flight: dict[str, asyncio.Future[TaskHandle]] = {}
        self._attempts: set[asyncio.Task[None]] = set()
        self._creating = 0  # create() calls in progress
        self._none_creating: asyncio.Future[None] | None = None  # drain() waits on it
        self._retrying: set[_Create] = set()  # creates inside backoff's loop
        # Task id -> the journal key (None: no journal) of the create it answered (issue 13).
        self._created_ids: dict[str, str | None] = {}
        self.counts = dict.fromkeys(("submits", "submit_retries", "ambiguous_submits"), 0)
        self._send_with_retries = backoff.on_exception(
            lambda: retry.waits(max_retry_after=retry.max_retry_after),
            CometRunwayError,
            max_tries=retry.max_tries,
            giveup=lambda exc: not _not_accepted(exc),
            jitter=None,  # RetryPolicy.waits jitters itself
            on_backoff=self._on_backoff,
            logger=None,
        )(self._attempt)

    async def drain(self) -> None:
        """The client is closing: end every wait between two attempts at once, then wait
        for every create in progress and every attempt in flight (the rate budget is closed,
        so none of them waits long). A create between its journal claim and its attempt
        marks its row rejected while the journal is still open."""
        for create in self._retrying:
            if create.waiting is not None and not create.closed_while_waiting:
                # As asyncio.timeout() ends a wait: cancel it, and count the cancel as ours.
                create.closed_while_waiting = True
                create.waiting.cancel()
        while self._attempts or self._creating:
            ends: set[asyncio.Future[Any]] = set(self._attempts)
            if self._creating:
                if self._none_creating is None:
                    self._none_creating = asyncio.get_running_loop().create_future()
                ends.add(self._none_creating)
            await asyncio.wait(ends)

    # ---------------------------------------------------------------- the create

    async def create(
        self, request: Request, http: HTTPRequest, key: str | None, label: str | None
    ) -> TaskHandle:
        """Create the task once; ``key`` is its journal key (None: no journal)."""
        self._creating += 1
        try:
            return await self._create_keyed(request, http, key, label)
        finally:
            self._creating -= 1
            if not self._creating and self._none_creating is not None:
                self._none_creating.set_result(None)
                self._none_creating = None

    async def _create_keyed(
        self, request: Request, http: HTTPRequest, key: str | None, label: str | None
    ) -> TaskHandle:
        if key is None:
            return await self._create(request, http, None, label)
        running = self._in_flight.get(key)
        if running is not None:
            # The same request asked twice at once: wait for the first instead of racing it.
            return await asyncio.shield(running)
        running = asyncio.get_running_loop().create_future()
        running.add_done_callback(_retrieve)
        self._in_flight[key] = running
        try:
            handle = await self._claim_and_create(request, http, key, label)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                running.cancel()
            else:
                running.set_exception(exc)
            raise
        finally:
            del self._in_flight[key]
        running.set_result(handle)
        return handle

    async def _claim_and_create(
        self, request: Request, http: HTTPRequest, key: str, label: str | None
    ) -> TaskHandle:
        assert self.journal is not None  # a key is given only with a journal
        for _ in range(2):  # once more only if another worker's send of it was refused
            entry, claimed = await self.journal.reserve_sending(
                key,
                request_type=type(request).__name__,
                path=http.path,
                body=request_key(http)[1],
                poll_route=request.poll_route,
                label=label,
            )
            if claimed:
                return await self._create(request, http, key, label)
            if entry.state is not EntryState.SENDING or self.wait_sent is None:
                break
            # Another worker of the fleet is sending this very request: its task is ours
            # as soon as it has an id (never a second create); a refusal frees the key.
            entry = await self.wait_sent(key) or entry
            if entry.state is not EntryState.REJECTED:
                break
        return self._reuse(entry, request, label)

    async def _create(
        self, request: Request, http: HTTPRequest, key: str | None, label: str | None
    ) -> TaskHandle:
        self.counts["submits"] += 1
        create = _Create(request, http, key, label)
        try:
            return await self._retried(create)
        except CometRunwayError as exc:
            if submit_disposition(exc) is SubmitDisposition.AMBIGUOUS:
                raise self._ambiguous(exc, create) from exc
            self._events.emit(SubmitRejected(key, type(request).__name__, exc, create.label))
            raise

    async def _retried(self, create: _Create) -> TaskHandle:
        """backoff's attempts (until one lands, one fails in a way that is not certainly
        "not accepted", or ``max_tries`` ran out). Closing the client cancels the wait of a
        create between two attempts: its row is journaled as rejected already, and nothing
        more is sent."""
        self._retrying.add(create)
        try:
            return await self._send_with_retries(create)
        except asyncio.CancelledError:
            # Ours (drain) unless the caller was cancelled too: then the caller's wins.
            waiting = create.waiting
            if create.closed_while_waiting and waiting is not None and waiting.uncancel() == 0:
                raise ClientStateError(_CLOSED_WHILE_WAITING) from None
            raise
        finally:
            self._retrying.discard(create)
            create.waiting = None

    async def _attempt(self, create: _Create) -> TaskHandle:
        """One attempt, run as a group child: a cancelled caller stops waiting, not it."""
        create.waiting = None
        create.attempts += 1
        outcome: asyncio.Future[TaskHandle] = asyncio.get_running_loop().create_future()
        try:
            child = self._spawn(self._send_once(create, outcome))
        except ClientStateError as exc:  # closing between two attempts: nothing was sent
            if self.journal is not None and create.key is not None:
                await self.journal.mark_rejected(create.key, str(exc))
            raise
        self._attempts.add(child)
        child.add_done_callback(self._attempts.discard)
        try:
            return await outcome
        except asyncio.CancelledError:
            # The caller stopped waiting: an error the attempt hears later is nobody's.
            outcome.add_done_callback(_retrieve)
            raise

    async def _send_once(self, create: _Create, outcome: asyncio.Future[TaskHandle]) -> None:
        key, request = create.key, create.request
        journal = self.journal if key is not None else None
        try:
            if journal is not None and key is not None and create.attempts > 1:
                await journal.mark_sending(key)  # the claim did it for the first attempt
            try:
                created = parse_created(await self._send(create.http))
                task_id = created.task_id
                self._claim_id(task_id, key)
            except CometRunwayError as exc:
                if journal is not None and key is not None:
                    await _journal_failure(journal, key, exc)
                if not outcome.done():
                    outcome.set_exception(exc)
                return
            except BaseException:
                if journal is not None and key is not None:
                    await asyncio.shield(journal.mark_ambiguous(key, "interrupted while sending"))
                raise
            # The task's age counts from its answer, not from before the request waited for
            # its slot in the rate budget: pacing estimates start times from ages.
            submitted_at = self._clock()
            if journal is not None and key is not None:
                # Durable before visible: the id is on disk before any handle is handed out;
                # concurrent creates share one commit (group commit on the journal thread).
                try:
                    await journal.mark_submitted(key, task_id)
                except JournalError as exc:
                    # The task exists and the journal cannot say so: the caller must hear
                    # its id (never lose a task id), and the client keeps running.
                    # No traceback: the caller gets the error with its cause attached.
                    log.error("created task %s but could not journal it: %s", task_id, exc)  # noqa: TRY400
                    if not outcome.done():
                        unjournaled = UnjournaledTask(task_id, key, exc)
                        unjournaled.__cause__ = exc
                        outcome.set_exception(unjournaled)
                    return
                if created.estimated_cost is not None:  # Runway's estimate (wire §8.2)
                    await record_credits(
                        journal,
                        task_id,
                        status=created.status.value,
                        estimated_cost=created.estimated_cost,
                    )
            log.info("created task %s (%s)", task_id, type(request).__name__)
            handle = self._follow(task_id, request.poll_route, submitted_at)
            handle._note_estimate(created.estimated_cost)  # Runway's estimate (wire §8.2)
            if self._events.active:
                self._events.emit(
                    Submitted(
                        task_id,
                        key,
                        type(request).__name__,
                        create.label,
                        estimated_cost=created.estimated_cost,
                    )
                )
        except BaseException as exc:
            # A bug, or the client cancelled mid-attempt: the caller hears it, the group too.
            if not outcome.done():
                if isinstance(exc, asyncio.CancelledError):
                    outcome.cancel()
                else:
                    outcome.set_exception(exc)
            raise
        if not outcome.done():  # a cancelled caller cancelled it; the task is tracked anyway
            outcome.set_result(handle)

    def _claim_id(self, task_id: str, key: str | None) -> None:
        """Remember which create got ``task_id``; a second create answered with the same id
        is ambiguous (its own task may exist under another id), never the first's handle."""
        if task_id in self._created_ids:
            earlier = self._created_ids[task_id]
            first = f"journal key {earlier!r}" if earlier else "an earlier create"
            raise DecodeError(
                f"the server answered with task id {task_id!r}, already given to {first} "
                f"(this create's journal key: {key!r}); whether this create made a task of "
                "its own is unknown"
            )
        self._created_ids[task_id] = key

    # ---------------------------------------------------------------- outcomes

    def _ambiguous(self, exc: CometRunwayError, create: _Create) -> AmbiguousSubmitError:
        """A create that may have been accepted: never resent, the caller settles it."""
        self.counts["ambiguous_submits"] += 1
        request_type = type(create.request).__name__
        self._events.emit(AmbiguousSubmit(create.key, request_type, exc, create.label))
        journaled = (
            f". It is journaled as ambiguous under key {create.key!r}: see client.ambiguous()"
            if create.key
            else ""
        )
        return AmbiguousSubmitError(
            f"{create.http.path}: the create may have been accepted ({exc}); it was not "
            f"retried, so as not to pay twice{journaled}",
            request=create.request,
            key=create.key,
        )

    def _reuse(self, entry: JournalEntry, request: Request, label: str | None) -> TaskHandle:
        """The task of a request already journaled, or why it cannot be sent again."""
        if entry.task_id:
            log.info(
                "request %s already has task %s: not submitting again", entry.key, entry.task_id
            )
            handle = self._follow(entry.task_id, request.poll_route, None)
            self._events.emit(
                Submitted(
                    entry.task_id,
                    entry.key,
                    type(request).__name__,
                    label or entry.label,
                    reused=True,
                )
            )
            return handle
        if entry.state in (EntryState.SENDING, EntryState.AMBIGUOUS):
            raise AmbiguousSubmitError(
                f"request {entry.key} was sent before and its outcome is unknown; if you found "
                f"its task call client.settle({entry.key!r}, task_id=...), or "
                f"client.settle({entry.key!r}, resubmit=True) to pay for it again on purpose",
                request=request,
                key=entry.key,
            )
        raise JournalError(f"journal row {entry.key!r} is {entry.state}: cannot reuse it")

    def _on_backoff(self, details: Any) -> None:
        self.counts["submit_retries"] += 1
        create: _Create = details["args"][0]
        create.waiting = asyncio.current_task()  # backoff sleeps next, in this task
        log.warning(
            "create not accepted (%s); retry %d in %.1fs",
            details.get("exception"),
            details.get("tries", 0),
            details.get("wait", 0.0),
        )


async def _journal_failure(journal: Journal, key: str, exc: CometRunwayError) -> None:
    if submit_disposition(exc) is SubmitDisposition.AMBIGUOUS:
        await journal.mark_ambiguous(key, str(exc))
    else:
        await journal.mark_rejected(key, str(exc), getattr(exc, "code", None))
