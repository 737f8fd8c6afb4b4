"""Clients sharing one PostgreSQL journal, in one process: leases, takeovers, handles settled
through the journal, the same prompt in two workers, and callbacks landing on the wrong one.

Each client signs its requests (``fleet_support.TaggedTransport``), so who polled which task
is read from the fake's request log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack
from pathlib import Path

import attrs
import pytest
from fleet_support import TaggedTransport, polls_by_task

from cometrunway import (
    AmbiguousSubmitError,
    Client,
    Event,
    FleetPolicy,
    PollPolicy,
    RetryPolicy,
    TaskFailed,
    TaskFinished,
    TaskNotFound,
    TaskStatus,
    TextToVideo,
)
from cometrunway._fleet import fleet_store, settle_from_row, task_of_row
from cometrunway.client import request_key
from cometrunway.handles import TaskHandle
from cometrunway.journal import (
    EntryState,
    JournalEntry,
    PostgresJournal,
    RowChange,
    SQLiteJournal,
)
from cometrunway.journal._pg_schema import RESYNC_STATE
from cometrunway.protocol import build_submit
from cometrunway.testing import FakeCometAPI, Lifecycle
from cometrunway.webhooks import CallbackReceiver

pytest.importorskip("psycopg", reason="needs the postgres extra: pip install -e '.[postgres]'")

KEY = "sk-fleet-test"
# A task settled through the journal, or woken through the fleet, within this (the bound
# the fleet promises).
WITHIN_SECONDS = 1.0
# Slow polls: a result that arrives sooner came through the fleet, not a scheduled poll.
SLOW_POLL = PollPolicy(initial_delay=0.05, interval=30.0, max_interval=30.0, min_interval=0.02)
FAST_POLL = PollPolicy(initial_delay=0.05, interval=0.1, max_interval=0.2, min_interval=0.02)
RETRY = RetryPolicy(max_tries=2, base_delay=0.01, max_delay=0.02)
# Short leases so takeovers happen within a test; real deployments keep the defaults.
SHORT = FleetPolicy(lease_seconds=0.6, claim_interval=0.1, sender_wait=10.0)

MakeClient = Callable[..., Client]


@pytest.fixture
async def fake() -> AsyncIterator[FakeCometAPI]:
    # Tasks run until the test ends them (fake.finish / fake.fail).
    async with FakeCometAPI(lifecycle=Lifecycle(running_for=3600.0)) as server:
        yield server


@pytest.fixture
async def clients(postgres_url: str, fake: FakeCometAPI) -> AsyncIterator[MakeClient]:
    """Opens clients named by their worker tag, all on one database; closes them at the end."""
    async with AsyncExitStack() as stack:
        opened: list[Client] = []

        def make(
            name: str,
            *,
            poll: PollPolicy = SLOW_POLL,
            fleet: FleetPolicy = SHORT,
            on_event: Callable[[Event], None] | None = None,
        ) -> Client:
            client = Client(
                KEY,
                on_event=on_event,
                base_url=fake.url,
                journal=postgres_url,
                poll=poll,
                retry=RETRY,
                fleet=fleet,
                transport=TaggedTransport(fake.url, name),
            )
            opened.append(client)
            return client

        async def enter(client: Client) -> Client:
            return await stack.enter_async_context(client)

        make.enter = enter  # type: ignore[attr-defined]
        yield make


async def opened(make: MakeClient, name: str, **options: object) -> Client:
    client = make(name, **options)
    return await make.enter(client)  # type: ignore[attr-defined, no-any-return]


def pollers(fake: FakeCometAPI, task_id: str) -> set[str]:
    return {worker for _, worker in polls_by_task(fake.poll_log()).get(task_id, [])}


async def test_only_a_postgres_journal_is_a_fleet_store(tmp_path: Path, postgres_url: str) -> None:
    assert fleet_store(SQLiteJournal(tmp_path / "run.sqlite")) is None
    assert fleet_store(PostgresJournal(postgres_url)) is not None


async def test_a_task_is_polled_by_its_submitter_and_settled_elsewhere_from_the_journal(
    clients: MakeClient, fake: FakeCometAPI
) -> None:
    seen_by_b: list[Event] = []
    a = await opened(clients, "a")
    b = await opened(clients, "b", on_event=seen_by_b.append)
    request = TextToVideo("a fox in the snow")
    mine = await a.submit(request)
    theirs = await b.submit(request)  # the same prompt: A's task, not a second create
    assert theirs.task_id == mine.task_id and fake.created_count() == 1
    while not pollers(fake, mine.task_id):
        await asyncio.sleep(0.01)
    assert isinstance(a.journal, PostgresJournal)
    assert await a.journal.leases() == {mine.task_id: a.journal.instance_id}

    fake.finish(mine.task_id)
    a.wake(mine.task_id)  # the holder polls at once
    async with asyncio.timeout(WITHIN_SECONDS):
        done = await theirs
    assert done.status is TaskStatus.SUCCEEDED and done.outputs
    # The row keeps every URL (video first, then poster and last frame): the same video.
    assert (await mine).video_url == done.video_url
    assert set((await mine).all_urls) == set(done.outputs)
    assert pollers(fake, mine.task_id) == {"a"}  # B never polled it
    # B's event subscribers hear the end it read from the journal, as from a poll.
    finished = [e for e in seen_by_b if isinstance(e, TaskFinished)]
    assert [(e.task_id, e.status) for e in finished] == [(mine.task_id, TaskStatus.SUCCEEDED)]


async def test_a_failure_seen_by_another_worker_fails_the_handle_with_task_failed(
    clients: MakeClient, fake: FakeCometAPI
) -> None:
    a = await opened(clients, "a")
    b = await opened(clients, "b")
    request = TextToVideo("a storm over the sea")
    mine = await a.submit(request)
    theirs = await b.submit(request)
    fake.fail(mine.task_id, "moderated", "SAFETY.INPUT.TEXT")
    a.wake(mine.task_id)
    with pytest.raises(TaskFailed) as failed:
        async with asyncio.timeout(WITHIN_SECONDS):
            await theirs
    assert failed.value.task.status is TaskStatus.FAILED
    assert failed.value.task.error_code == "SAFETY.INPUT.TEXT"


async def test_a_callback_on_the_waiting_worker_makes_the_holder_poll_now(
    clients: MakeClient, fake: FakeCometAPI
) -> None:
    a = await opened(clients, "a")
    b = await opened(clients, "b")
    request = TextToVideo("a lighthouse at dusk")
    mine = await a.submit(request)
    theirs = await b.submit(request)
    while not pollers(fake, mine.task_id):  # A's first poll is done; the next is in 30 s
        await asyncio.sleep(0.01)
    fake.finish(mine.task_id)
    receiver = CallbackReceiver(b)  # the callback lands on B, which does not poll the task
    body = b'{"id": "%s", "status": "SUCCEEDED"}' % mine.task_id.encode()
    verdict = receiver.handle(body, {"token": b.callback_token}, {})
    assert verdict.accepted
    async with asyncio.timeout(WITHIN_SECONDS):
        done = await theirs
    assert done.status is TaskStatus.SUCCEEDED
    assert pollers(fake, mine.task_id) == {"a"}  # confirmed by A's real poll, not the body
    # A forged callback still wakes nobody.
    forged = receiver.handle(body, {"token": "x" * 32}, {})
    assert not forged.accepted and forged.status == 401


async def test_the_same_prompt_in_two_workers_at_once_is_created_once(
    postgres_url: str, clients: MakeClient
) -> None:
    async with FakeCometAPI(latency=0.3, lifecycle=Lifecycle(running_for=0.2)) as slow:
        a = Client(
            KEY,
            base_url=slow.url,
            journal=postgres_url,
            poll=FAST_POLL,
            retry=RETRY,
            fleet=SHORT,
            transport=TaggedTransport(slow.url, "a"),
        )
        b = Client(
            KEY,
            base_url=slow.url,
            journal=postgres_url,
            poll=FAST_POLL,
            retry=RETRY,
            fleet=SHORT,
            transport=TaggedTransport(slow.url, "b"),
        )
        async with a, b:
            request = TextToVideo("two workers, one prompt")
            first, second = await asyncio.gather(a.submit(request), b.submit(request))
            assert first.task_id == second.task_id
            assert slow.created_count() == 1  # the loser waited for the winner's id
            results = await asyncio.gather(first, second)
            assert {r.status for r in results} == {TaskStatus.SUCCEEDED}
            by = {w for _, w in polls_by_task(slow.poll_log())[first.task_id]}
            assert len(by) == 1


async def test_waiting_for_another_workers_send_ends_in_ambiguous_after_sender_wait(
    postgres_url: str, clients: MakeClient
) -> None:
    async with PostgresJournal(postgres_url) as other:
        a = await opened(clients, "a", fleet=FleetPolicy(sender_wait=0.2))
        request = TextToVideo("a send that never ends")
        key, body = request_key(build_submit(request, api_key="-"))
        # Another live worker claimed it and is still sending.
        _, claimed = await other.reserve_sending(
            key,
            request_type="TextToVideo",
            path="/runway/pro/generate",
            body=body,
            poll_route="feed",
        )
        assert claimed
        with pytest.raises(AmbiguousSubmitError):
            await a.submit(request)


async def test_a_lapsed_lease_is_taken_over_and_the_waiting_handle_resolves(
    postgres_url: str, clients: MakeClient, fake: FakeCometAPI
) -> None:
    # Worker "dead" created a task, leased it, then stopped renewing (it crashed).
    async with Client(KEY, base_url=fake.url) as plain:
        created = await plain.submit(TextToVideo("a worker that died"), key="k-dead")
        task_id = created.task_id
    async with PostgresJournal(postgres_url) as dead:
        entry, claimed = await dead.reserve_sending(
            "k-dead",
            request_type="TextToVideo",
            path="/runway/pro/generate",
            body="{}",
            poll_route="feed",
        )
        await dead.mark_submitted("k-dead", task_id)
        assert await dead.renew_polls([task_id], lease_seconds=SHORT.lease_seconds) == {task_id}
        b = await opened(clients, "b", poll=FAST_POLL)
        handle = b.track(task_id)
        await asyncio.sleep(0)
        assert (await dead.leases())[task_id] == dead.instance_id  # not B's while it lasts
        fake.finish(task_id)
        async with asyncio.timeout(SHORT.lease_seconds + 2.0):
            done = await handle  # B took the task over once the lease lapsed, and polled it
        assert done.status is TaskStatus.SUCCEEDED
        row = await dead.get_by_task(task_id)
        assert row is not None and row.state is EntryState.DONE
    assert pollers(fake, task_id) == {"b"}


async def test_a_task_nobody_holds_is_claimed_and_finished_in_the_journal(
    postgres_url: str, clients: MakeClient, fake: FakeCometAPI
) -> None:
    async with Client(KEY, base_url=fake.url) as plain:
        task_id = (await plain.submit(TextToVideo("an orphan"))).task_id
    async with PostgresJournal(postgres_url) as journal:
        await journal.track(task_id, poll_route="feed")  # journaled, never leased
        b = await opened(clients, "b", poll=FAST_POLL)
        fake.finish(task_id)
        entry = await journal.wait_finished(task_id, SHORT.claim_interval + 2.0)
        assert entry is not None and entry.state is EntryState.DONE
        assert entry.status == "SUCCEEDED"
    assert pollers(fake, task_id) == {"b"}
    assert b.journal is not None


class HeldLeases(PostgresJournal):
    """A journal whose lease requests wait until the test lets them through: the window in
    which a worker has created a task and is still taking its lease."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.asked = asyncio.Event()
        self.through = asyncio.Event()

    async def renew_polls(self, task_ids: Iterable[str], *, lease_seconds: float) -> set[str]:
        self.asked.set()
        await self.through.wait()
        return await super().renew_polls(task_ids, lease_seconds=lease_seconds)


# The first poll of a fresh task a minute away: a sooner one came from a wake-up.
LATE_FIRST_POLL = PollPolicy(initial_delay=60.0, interval=60.0, max_interval=60.0)


@pytest.mark.parametrize("woken_on", ["creator", "other worker"])
async def test_a_callback_that_beats_the_lease_makes_the_creator_poll_once_it_holds_it(
    postgres_url: str, fake: FakeCometAPI, woken_on: str
) -> None:
    """A fast task's callback can land while its creator is still taking the lease; the
    wake-up is kept and the task polled as soon as the lease is taken, not a minute later."""
    journal = HeldLeases(postgres_url)
    creator = Client(KEY, base_url=fake.url, journal=journal, poll=LATE_FIRST_POLL, fleet=SHORT)
    other = Client(KEY, base_url=fake.url, journal=postgres_url, poll=LATE_FIRST_POLL, fleet=SHORT)
    async with creator, other:
        handle = await creator.submit(TextToVideo("a quick sketch"))
        await journal.asked.wait()  # the lease is being taken, and waits
        fake.finish(handle.task_id)
        heard: list[RowChange] = []
        journal.add_listener(heard.append)  # after the fleet's own listener
        assert (creator if woken_on == "creator" else other).wake(handle.task_id)
        if woken_on == "other worker":
            while not any(c.task_id == handle.task_id for c in heard):  # the creator heard it
                await asyncio.sleep(0.01)
        journal.through.set()
        async with asyncio.timeout(WITHIN_SECONDS):
            done = await handle
    assert done.status is TaskStatus.SUCCEEDED


async def test_closing_gives_the_leases_back(postgres_url: str, fake: FakeCometAPI) -> None:
    async with PostgresJournal(postgres_url) as watcher:
        client = Client(KEY, base_url=fake.url, journal=postgres_url, poll=SLOW_POLL, fleet=SHORT)
        async with client:
            handle = await client.submit(TextToVideo("given back on close"))
            while handle.task_id not in await watcher.leases():
                await asyncio.sleep(0.01)
        assert await watcher.leases() == {}
        # Another worker can claim it at once.
        claimed = await watcher.claim_polls(10)
        assert [e.task_id for e in claimed] == [handle.task_id]


def test_a_fleet_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        FleetPolicy(lease_seconds=0)
    with pytest.raises(TypeError, match="fleet must be a FleetPolicy"):
        Client(KEY, fleet=30)  # type: ignore[arg-type]


def row(status: str, *, error: str | None = None, error_code: str | None = None) -> JournalEntry:
    return JournalEntry(
        key="k",
        request_type="TextToVideo",
        path="/runway/pro/generate",
        body="{}",
        poll_route="feed",
        state=EntryState.DONE,
        task_id="t-1",
        status=status,
        progress=1.0,
        outputs=("https://cdn.example/v.mp4", "https://cdn.example/poster.png"),
        error=error,
        error_code=error_code,
        created_at=0.0,
        updated_at=0.0,
        submitted_at=0.0,
    )


def settled(entry: JournalEntry) -> TaskHandle:
    handle = TaskHandle("t-1", poll_route="feed")
    settle_from_row(handle, entry)
    assert handle.done()
    return handle


def test_a_finished_row_settles_a_handle_as_a_poll_would() -> None:
    ok = settled(row("SUCCEEDED"))
    assert ok.exception() is None and ok.task is not None
    assert ok.task.video_url == "https://cdn.example/v.mp4"
    failed = settled(row("FAILED", error="moderated", error_code="SAFETY.INPUT.TEXT"))
    assert isinstance(failed.exception(), TaskFailed)
    assert failed.task is not None and failed.task.error_code == "SAFETY.INPUT.TEXT"
    cancelled = settled(row("CANCELLED"))
    assert isinstance(cancelled.exception(), TaskFailed)
    lost = settled(row("NOT_FOUND", error="never visible", error_code="task_not_exist"))
    assert isinstance(lost.exception(), TaskNotFound)
    other = settled(row("LOST", error="the poll failed for good"))
    assert "the poll failed for good" in str(other.exception())
    assert task_of_row(attrs.evolve(row("SUCCEEDED"), state=EntryState.SUBMITTED)) is None
    # The row keeps every URL the poll saw: the video is the one that is not an image.
    poster_first = attrs.evolve(
        row("SUCCEEDED"),
        outputs=("https://cdn.example/poster.png", "https://cdn.example/v.mp4"),
        estimated_cost=4.0,
        cost=4.0,
    )
    task = task_of_row(poster_first)
    assert task is not None and task.video_url == "https://cdn.example/v.mp4"
    assert (task.estimated_cost, task.cost) == (4.0, 4.0)


async def test_a_task_never_leased_is_left_to_its_creator_for_min_age(postgres_url: str) -> None:
    async with PostgresJournal(postgres_url) as creator, PostgresJournal(postgres_url) as other:
        await creator.track("t-fresh", poll_route="feed")
        assert await other.claim_polls(10, min_age=60.0) == []
        assert [e.task_id for e in await other.claim_polls(10, min_age=0.0)] == ["t-fresh"]
        with pytest.raises(ValueError, match="min_age"):
            await other.claim_polls(10, min_age=-1.0)


def test_the_client_and_the_store_name_a_wake_up_alike() -> None:
    from cometrunway._fleet import WAKE_STATE
    from cometrunway.journal._pg_schema import WAKE_STATE as STORE_WAKE_STATE

    assert WAKE_STATE == STORE_WAKE_STATE


async def test_a_watched_handle_whose_end_was_not_announced_is_settled_all_the_same(
    clients: MakeClient, fake: FakeCometAPI
) -> None:
    a = await opened(clients, "a")
    b = await opened(clients, "b")
    request = TextToVideo("a notification that never came")
    mine = await a.submit(request)
    theirs = await b.submit(request)
    assert b.journal is not None and b._fleet is not None
    # B stops hearing the journal's announcements (as if its listening connection dropped).
    b.journal.remove_listener(b._fleet._on_change)  # type: ignore[attr-defined]
    fake.finish(mine.task_id)
    a.wake(mine.task_id)
    await mine
    async with asyncio.timeout(SHORT.lease_seconds + 2.0):  # re-read at B's next renewal
        done = await theirs
    assert done.status is TaskStatus.SUCCEEDED
    b.journal.add_listener(b._fleet._on_change)  # type: ignore[attr-defined]


async def test_a_watched_handle_is_settled_at_once_when_the_journal_may_have_missed_its_end(
    clients: MakeClient, fake: FakeCometAPI
) -> None:
    # Long leases: no renewal re-reads a watched row while the test runs.
    slow = FleetPolicy(lease_seconds=60.0, claim_interval=60.0, sender_wait=10.0)
    a = await opened(clients, "a", fleet=slow)
    b = await opened(clients, "b", fleet=slow)
    request = TextToVideo("an end announced while B's journal was not listening")
    mine = await a.submit(request)
    theirs = await b.submit(request)
    assert b.journal is not None and b._fleet is not None
    async with asyncio.timeout(WITHIN_SECONDS):
        while mine.task_id not in b._fleet._watched:  # B waits for A's poll
            await asyncio.sleep(0.01)
    b.journal.remove_listener(b._fleet._on_change)  # type: ignore[attr-defined]
    fake.finish(mine.task_id)
    a.wake(mine.task_id)
    await mine
    b.journal.add_listener(b._fleet._on_change)  # type: ignore[attr-defined]
    # What B's journal tells its listeners once its LISTEN connection is back.
    b._fleet._on_change(RowChange("", None, RESYNC_STATE, None))
    async with asyncio.timeout(WITHIN_SECONDS):
        done = await theirs
    assert done.status is TaskStatus.SUCCEEDED


def test_the_client_and_the_store_name_a_resync_alike() -> None:
    from cometrunway._fleet import RESYNC_STATE as CLIENT_RESYNC_STATE

    assert CLIENT_RESYNC_STATE == RESYNC_STATE
