"""Many workers, one journal: the client's side of a fleet (a PostgreSQL journal).

When the client's journal has the fleet capabilities (:class:`FleetStore`, checked once at
open), every task the client follows goes through a :class:`Fleet`, one child task of the
client's group:

* **Leases.** A task is leased to this worker (``renew_polls``) before its poller follows
  it; every third of the lease the worker renews every id it polls and every id it waits
  for, stops polling an id it no longer holds (the handle keeps waiting) and starts polling
  one whose holder let it go. Every ``claim_interval`` it claims unfinished tasks nobody
  holds (a dead worker's) and polls them; their results go to the journal like any poll.
  On close it gives its leases back.
* **Handles settled through the journal.** A handle whose task another worker polls is
  settled when that worker journals the end (a :class:`RowChange`): the ``Task`` is read
  back from the row, success resolves the handle and anything else fails it as a poll would.
* **Wake-ups.** ``client.wake(task_id)`` (a callback) for a task this worker does not poll
  asks the fleet (``wake_polls``): the holder's listener wakes its own poller, and the
  result reaches every waiting worker through the journal.

Nothing here trusts a callback's body: a wake-up only makes the holder poll now.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from ._fleet_rows import settle_from_row, task_of_row
from .budget import Clock, Sleep
from .errors import JournalError
from .handles import TaskHandle
from .journal import EntryState, JournalEntry, RowChange
from .models import PollRoute, Task
from .policies import FleetPolicy

__all__ = ["Fleet", "FleetStore", "fleet_store", "settle_from_row", "task_of_row"]

log: logging.Logger = logging.getLogger("cometrunway.fleet")

#: The ``state`` of a notification asking the lease holder to poll a task now (the
#: PostgreSQL store sends it: ``wake_polls``).
WAKE_STATE = "wake"
#: The ``state`` of the change a journal hands its listeners once its listening connection
#: is back after a drop (the PostgreSQL store's): ends announced meanwhile were missed.
RESYNC_STATE = "resync"
#: A task followed with ``client.track()`` gets its journal row a moment after its handle:
#: its lease is asked again this many times, this far apart, before it is polled unleased.
ROW_TRIES = 20
ROW_RETRY_SECONDS = 0.05
#: The first poll of a task taken over from another worker: at once (it is overdue).
TAKEOVER_FIRST_DELAY = 0.0
#: Watched rows read back in one query: one statement's worth of ids, so a resync of
#: thousands of handles takes a few reads, not one per handle.
SETTLE_BATCH = 500
#: A lost notification (its connection dropped) must not leave a handle waiting forever:
#: each renewal also re-reads this many watched rows, in turn (one read).
WATCH_RECHECK = SETTLE_BATCH


@runtime_checkable
class FleetStore(Protocol):
    """What a journal offers a fleet of workers (``PostgresJournal`` has it; SQLite not)."""

    async def renew_polls(
        self, task_ids: Iterable[str], *, lease_seconds: float = ...
    ) -> set[str]: ...

    async def claim_polls(
        self, limit: int, *, lease_seconds: float = ..., min_age: float = ...
    ) -> list[JournalEntry]: ...

    async def release_polls(self, task_ids: Iterable[str]) -> None: ...

    async def wake_polls(self, task_ids: Iterable[str]) -> None: ...

    async def wait_sent(self, key: str, within: float) -> JournalEntry | None: ...

    async def get_by_task(self, task_id: str) -> JournalEntry | None: ...

    async def finished_rows(self, task_ids: Iterable[str]) -> list[JournalEntry]: ...

    def add_listener(self, listener: Callable[[RowChange], None]) -> None: ...

    def remove_listener(self, listener: Callable[[RowChange], None]) -> None: ...


def fleet_store(journal: object) -> FleetStore | None:
    """``journal`` as a fleet store when it has every fleet method, else None."""
    return journal if isinstance(journal, FleetStore) else None


class PollerSeat(Protocol):
    """What the fleet asks of the client's one poller."""

    def track(
        self,
        handle: TaskHandle,
        *,
        submitted_at: float | None = None,
        first_delay: float | None = None,
    ) -> TaskHandle: ...

    def get(self, task_id: str) -> TaskHandle | None: ...

    def release(self, task_id: str) -> TaskHandle | None: ...

    def wake(self, task_id: str) -> bool: ...

    def followed(self) -> list[str]: ...


class Fleet:
    """This worker's part in a fleet sharing one journal (see the module docstring)."""

    def __init__(
        self,
        store: FleetStore,
        poller: PollerSeat,
        policy: FleetPolicy,
        *,
        new_handle: Callable[[str, PollRoute], TaskHandle],
        clock: Clock,
        wall: Clock,
        sleep: Sleep,
        on_settled: Callable[[Task], None] = lambda task: None,
    ) -> None:
        self._store = store
        self._on_settled = on_settled  # a handle settled from another worker's result
        self._poller = poller
        self._policy = policy
        self._new_handle = new_handle
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        # Handed to the fleet, lease not asked yet: task id -> (handle, submitted_at, tries).
        self._pending: dict[str, tuple[TaskHandle, float | None, int]] = {}
        # Waiting for another worker's poll: settled from the journal when it ends.
        self._watched: dict[str, TaskHandle] = {}
        # Watched ids to re-read: their row was announced DONE, or may have ended unheard.
        self._finished: set[str] = set()
        self._wakes: set[str] = set()  # ids to ask the fleet to poll now
        # Pending ids a wake-up asked to poll now while their lease was being taken: polled
        # at once if the lease is ours (a fast task's callback can beat its lease), else
        # passed on to the holder if the wake-up came to this worker (True).
        self._woken: dict[str, bool] = {}
        self._unleasable: set[str] = set()  # polled without a lease (no journal row)
        self._work = asyncio.Event()
        self._recheck_from = 0  # where the next re-read of watched rows starts
        self.counts = dict.fromkeys(("taken_over", "handed_over", "settled_from_journal"), 0)

    # ---------------------------------------------------------------- what the client calls

    def get(self, task_id: str) -> TaskHandle | None:
        """The handle of a task handed to the fleet and not polled here (or None)."""
        pending = self._pending.get(task_id)
        if pending is not None:
            return pending[0]
        return self._watched.get(task_id)

    def follow(self, handle: TaskHandle, submitted_at: float | None) -> TaskHandle:
        """Follow ``handle``'s task: polled here once leased, else settled from the journal."""
        known = self._poller.get(handle.task_id) or self.get(handle.task_id)
        if known is not None:
            return known
        self._pending[handle.task_id] = (handle, submitted_at, 0)
        self._work.set()
        return handle

    def wake(self, task_id: str) -> bool:
        """Poll this task now: here if this worker polls it, else by its lease holder."""
        if self._poller.wake(task_id):
            return True
        if task_id in self._pending:
            self._woken[task_id] = True  # decided with its lease: polled here or passed on
        else:
            self._wakes.add(task_id)
        self._work.set()
        return True

    async def release(self) -> None:
        """Give back every lease this worker holds (it is closing): others claim at once."""
        ids = [i for i in self._poller.followed() if i not in self._unleasable]
        if ids:
            try:
                await self._store.release_polls(ids)
            except JournalError as exc:  # they expire by themselves; nothing is lost
                log.warning("could not release %d poll lease(s): %s", len(ids), exc)

    def close(self, error: Callable[[str], BaseException]) -> None:
        """Fail every handle still waiting on the fleet with ``error(task_id)``."""
        waiting = [h for h, _, _ in self._pending.values()] + list(self._watched.values())
        self._pending.clear()
        self._watched.clear()
        self._woken.clear()
        for handle in waiting:
            handle._fail(error(handle.task_id))

    # ---------------------------------------------------------------- the child task

    async def run(self) -> None:
        """Leases, takeovers and settling from the journal, until cancelled."""
        self._store.add_listener(self._on_change)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._react())
                await self._keep_leases()
        finally:
            self._store.remove_listener(self._on_change)

    def _on_change(self, change: RowChange) -> None:
        if change.state == RESYNC_STATE:  # any watched row may have ended unannounced
            self._finished.update(self._watched)
            self._work.set()
            return
        task_id = change.task_id
        if task_id is None:
            return
        if change.state == WAKE_STATE:
            # Polled here if this worker holds it; kept if this worker is leasing it now.
            if not self._poller.wake(task_id) and task_id in self._pending:
                self._woken.setdefault(task_id, False)  # the holder heard it too
        elif change.state == EntryState.DONE and task_id in self._watched:
            self._finished.add(task_id)
            self._work.set()

    async def _react(self) -> None:
        """Handle what arrived: new tasks to lease, wake-ups to pass on, rows that ended."""
        while True:
            await self._work.wait()
            self._work.clear()
            try:
                if self._wakes:
                    wakes, self._wakes = self._wakes, set()
                    await self._store.wake_polls(wakes)
                if self._pending:
                    await self._adopt(dict(self._pending))
                if self._finished:
                    finished, self._finished = self._finished, set()
                    try:
                        await self._settle(finished)
                    except JournalError:
                        self._finished |= finished  # read again after the pause below
                        raise
            except JournalError as exc:
                log.warning("fleet journal call failed (retrying shortly): %s", exc)
                await self._sleep(ROW_RETRY_SECONDS)
                self._work.set()

    async def _adopt(self, batch: dict[str, tuple[TaskHandle, float | None, int]]) -> None:
        # They stay pending until decided (a claim meanwhile finds them there); on a journal
        # error they are asked again by _react.
        held = await self._store.renew_polls(list(batch), lease_seconds=self._policy.lease_seconds)
        for task_id in batch:
            woken = self._woken.pop(task_id, None)  # a wake-up while the lease was taken
            pending = self._pending.pop(task_id, None)
            if pending is None:  # claimed meanwhile: polled here already
                if woken is not None:
                    self._poller.wake(task_id)
                continue
            handle, submitted_at, tries = pending
            if task_id in held:
                self._poll_here(handle, submitted_at)
                if woken is not None:
                    self._poller.wake(task_id)
            else:
                if woken:  # another worker holds it: the wake-up is its to act on
                    self._wakes.add(task_id)
                    self._work.set()
                await self._watch(handle, submitted_at, tries)

    def _poll_here(
        self, handle: TaskHandle, submitted_at: float | None = None, *, overdue: bool = False
    ) -> None:
        # A task taken over is overdue: its last poller is gone, so its first poll here is
        # now (paced by the request budget), not a fresh task's first delay.
        first_delay = TAKEOVER_FIRST_DELAY if overdue else None
        tracked = self._poller.track(handle, submitted_at=submitted_at, first_delay=first_delay)
        if tracked is not handle:  # the poller already had this task: settle both alike
            tracked.add_done_callback(lambda done: _copy_outcome(done, handle))

    async def _watch(self, handle: TaskHandle, submitted_at: float | None, tries: int) -> None:
        """Wait for another worker's poll of ``handle``'s task, or settle it at once."""
        task_id = handle.task_id
        self._watched[task_id] = handle  # before reading: an end announced meanwhile counts
        entry = await self._store.get_by_task(task_id)
        if self._watched.get(task_id) is not handle:
            return  # taken over meanwhile (a claim): polled here now
        if entry is None:
            del self._watched[task_id]
            if tries < ROW_TRIES:  # a track() whose row is still being written
                loop = asyncio.get_running_loop()
                loop.call_later(ROW_RETRY_SECONDS, self._retry, handle, submitted_at, tries + 1)
            else:
                log.warning("task %s has no journal row: polled here without a lease", task_id)
                self._unleasable.add(task_id)
                self._poll_here(handle, submitted_at)
        elif entry.state is EntryState.DONE:
            self._settle_handle(handle, entry)
        elif entry.state is not EntryState.SUBMITTED:
            del self._watched[task_id]
            self._poll_here(handle, submitted_at)

    def _retry(self, handle: TaskHandle, submitted_at: float | None, tries: int) -> None:
        if not handle.done() and handle.task_id not in self._pending:
            self._pending[handle.task_id] = (handle, submitted_at, tries)
            self._work.set()

    async def _settle(self, task_ids: Iterable[str]) -> None:
        """Settle each watched handle of ``task_ids`` whose row is DONE."""
        ids = [task_id for task_id in task_ids if task_id in self._watched]
        for start in range(0, len(ids), SETTLE_BATCH):
            for entry in await self._store.finished_rows(ids[start : start + SETTLE_BATCH]):
                handle = self._watched.get(entry.task_id or "")
                if handle is not None and entry.state is EntryState.DONE:
                    self._settle_handle(handle, entry)

    def _settle_handle(self, handle: TaskHandle, entry: JournalEntry) -> None:
        self._watched.pop(handle.task_id, None)
        if not handle.done():
            self.counts["settled_from_journal"] += 1
            task = settle_from_row(handle, entry)
            if task is not None:
                self._on_settled(task)

    # ---------------------------------------------------------------- leases

    async def _keep_leases(self) -> None:
        renew_every = self._policy.lease_seconds / 3
        next_claim = self._clock()
        while True:
            await self._sleep(min(renew_every, self._policy.claim_interval))
            try:
                await self._renew()
                if self._clock() >= next_claim:
                    next_claim = self._clock() + self._policy.claim_interval
                    await self._claim()
            except JournalError as exc:  # the leases lapse at worst; others take over
                log.warning("could not renew or claim poll leases: %s", exc)

    async def _renew(self) -> None:
        followed = [i for i in self._poller.followed() if i not in self._unleasable]
        watched = list(self._watched)
        if not followed and not watched:
            return
        held = await self._store.renew_polls(
            followed + watched, lease_seconds=self._policy.lease_seconds
        )
        for task_id in followed:
            if task_id not in held:
                handle = self._poller.release(task_id)
                if handle is not None and not handle.done():
                    self.counts["handed_over"] += 1
                    log.info("task %s is polled by another worker now", task_id)
                    await self._watch(handle, None, ROW_TRIES)
        for task_id in watched:
            handle = self._watched.get(task_id)
            if task_id in held and handle is not None:
                del self._watched[task_id]
                self.counts["taken_over"] += 1
                log.info("took over task %s (its poller let its lease lapse)", task_id)
                self._poll_here(handle, overdue=True)
        await self._recheck()

    async def _recheck(self) -> None:
        """Re-read a few watched rows: one that ended unannounced settles its handle."""
        watched = list(self._watched)
        if not watched:
            return
        start = self._recheck_from % len(watched)
        self._recheck_from = start + WATCH_RECHECK
        await self._settle(watched[start : start + WATCH_RECHECK])

    async def _claim(self) -> None:
        # A task never leased is left to its creator for one lease time (it leases its
        # tasks within moments of their create): only then is it an orphan to claim.
        lease = self._policy.lease_seconds
        claimed = await self._store.claim_polls(
            self._policy.claim_limit, lease_seconds=lease, min_age=lease
        )
        for entry in claimed:
            task_id = entry.task_id
            if task_id is None or self._poller.get(task_id) is not None:
                continue
            self.counts["taken_over"] += 1
            handle = self._watched.pop(task_id, None)
            pending = self._pending.pop(task_id, None)
            self._woken.pop(task_id, None)  # polled at once below: it is overdue
            if handle is None:
                handle = pending[0] if pending else None
            if handle is None:
                route: PollRoute = "tasks" if entry.poll_route == "tasks" else "feed"
                handle = self._new_handle(task_id, route)
            submitted_at = None
            if entry.submitted_at is not None:  # a wall time: the poller's clock is monotonic
                submitted_at = self._clock() - max(0.0, self._wall() - entry.submitted_at)
            log.info("took over task %s (nobody held its lease)", task_id)
            self._poll_here(handle, submitted_at, overdue=pending is None)


def _copy_outcome(done: TaskHandle, handle: TaskHandle) -> None:
    error = done.exception()
    if error is None and done.task is not None:
        handle._resolve(done.task)
    elif error is not None:
        handle._fail(error, done.task)
