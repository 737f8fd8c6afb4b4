"""The SQLite journal: transitions, dedupe, durability, refusal of foreign files, threading."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import sqlite3
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import cometrunway.journal as journal_module
import cometrunway.journal._schema as schema_module
from cometrunway.errors import JournalError, JournalKeyConflict
from cometrunway.journal import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    EntryState,
    Journal,
    JournalEntry,
    PostgresJournal,
    SQLiteJournal,
    open_journal,
)

REPO = Path(__file__).resolve().parents[1]
S = EntryState


class Clock:
    """A settable clock, so timestamps and orderings are exact."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "run.sqlite"


@pytest.fixture
async def journal(path: Path) -> AsyncIterator[SQLiteJournal]:
    async with SQLiteJournal(path, clock=Clock()) as j:
        yield j


async def reserve(j: Journal, key: str = "k1", **kw: Any) -> tuple[JournalEntry, bool]:
    args: dict[str, Any] = {
        "request_type": "TextToVideo",
        "path": "/runway/pro/generate",
        "body": '{"prompt":"a cat"}',
        "poll_route": "feed",
    }
    args.update(kw)
    return await j.reserve(key, **args)


async def status(j: Journal, task_id: str, word: str, *, terminal: bool = False, **kw: Any) -> None:
    args: dict[str, Any] = {"progress": None, "outputs": (), "error": None, "error_code": None}
    args.update(kw)
    await j.record_status(task_id, status=word, terminal=terminal, **args)


async def put_in_state(j: Journal, key: str, state: EntryState) -> None:
    """Drive a fresh row along the ordinary path until it reaches ``state``."""
    await reserve(j, key)
    if state is S.QUEUED:
        return
    await j.mark_sending(key)
    if state is S.SENDING:
        return
    if state is S.AMBIGUOUS:
        await j.mark_ambiguous(key, "read timeout")
        return
    if state is S.REJECTED:
        await j.mark_rejected(key, "HTTP 400 bad ratio", "invalid_request")
        return
    await j.mark_submitted(key, f"task-{key}")
    if state is S.DONE:
        await status(j, f"task-{key}", "SUCCEEDED", terminal=True, outputs=("https://v/1.mp4",))


async def state_of(j: Journal, key: str) -> EntryState:
    entry = await j.get(key)
    assert entry is not None
    return entry.state


# ---------------------------------------------------------------- lifecycle


async def test_use_before_open_raises(path: Path) -> None:
    j = SQLiteJournal(path)
    with pytest.raises(JournalError) as info:
        await j.get("k")
    assert str(info.value) == (
        f"journal {path} is not open: use `async with` or await open() first"
    )
    assert not await asyncio.to_thread(path.exists)


async def test_use_after_close_raises(path: Path) -> None:
    j = SQLiteJournal(path)
    await j.open()
    await j.close()
    for call in (j.get("k"), reserve(j), j.entries(), status(j, "t", "RUNNING")):
        with pytest.raises(JournalError) as info:
            await call
        assert str(info.value) == f"journal {path} is closed"
    await j.close()  # a second close is harmless
    with pytest.raises(JournalError, match="is closed; create a new SQLiteJournal"):
        await j.open()


async def test_open_twice_is_a_no_op(path: Path) -> None:
    j = SQLiteJournal(path)
    await j.open()
    thread = j.worker_thread_id
    await j.open()
    assert j.worker_thread_id == thread
    was_open = j.is_open
    await j.close()
    assert (was_open, j.is_open) == (True, False)
    assert "closed" in repr(j)


async def test_close_stops_the_worker_thread(path: Path) -> None:
    j = SQLiteJournal(path)
    await j.open()
    ident = j.worker_thread_id
    assert any(t.ident == ident for t in threading.enumerate())
    await j.close()
    assert all(t.ident != ident for t in threading.enumerate())


async def test_close_before_open_marks_it_closed(path: Path) -> None:
    j = SQLiteJournal(path)
    await j.close()
    with pytest.raises(JournalError, match="is closed"):
        await j.open()


async def test_memory_journal(tmp_path: Path) -> None:
    async with SQLiteJournal(":memory:") as j:
        await put_in_state(j, "k", S.SUBMITTED)
        assert [e.key for e in await j.unfinished()] == ["k"]


# ---------------------------------------------------------------- reserve and dedupe


async def test_reserve_creates_a_queued_row(journal: SQLiteJournal) -> None:
    entry, created = await reserve(journal, "k1", label="prompts.txt line 12")
    assert created
    assert entry == JournalEntry(
        key="k1",
        request_type="TextToVideo",
        path="/runway/pro/generate",
        body='{"prompt":"a cat"}',
        poll_route="feed",
        state=S.QUEUED,
        task_id=None,
        status=None,
        progress=None,
        outputs=(),
        error=None,
        error_code=None,
        created_at=entry.created_at,
        updated_at=entry.created_at,
        submitted_at=None,
        label="prompts.txt line 12",
    )
    assert await journal.get("k1") == entry


async def test_reserve_existing_key_returns_the_row_unchanged(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k1", S.SUBMITTED)
    before = await journal.get("k1")
    again, created = await reserve(journal, "k1", label="other")
    assert not created
    assert again == before
    assert await journal.get("k1") == before


@pytest.mark.parametrize("method", ["reserve", "reserve_sending"])
async def test_key_filed_for_another_request_is_a_conflict(
    journal: SQLiteJournal, method: str
) -> None:
    await put_in_state(journal, "k1", S.SUBMITTED)
    before = await journal.get("k1")
    with pytest.raises(JournalKeyConflict, match="'k1'") as info:
        await getattr(journal, method)(
            "k1",
            request_type="RunwayImageToVideo",
            path="/runwayml/v1/image_to_video",
            body='{"promptText":"a blue whale"}',
            poll_route="tasks",
        )
    assert info.value.key == "k1"
    assert info.value.journaled_path == "/runway/pro/generate"
    assert info.value.requested_path == "/runwayml/v1/image_to_video"
    assert "/runway/pro/generate" in str(info.value)
    assert "/runwayml/v1/image_to_video" in str(info.value)
    assert isinstance(info.value, JournalError)
    assert await journal.get("k1") == before


async def test_concurrent_reserve_of_one_key_makes_one_row(journal: SQLiteJournal) -> None:
    results = await asyncio.gather(*(reserve(journal, "same", label=str(i)) for i in range(50)))
    assert sum(created for _, created in results) == 1
    winner = next(entry for entry, created in results if created)
    assert all(entry == winner for entry, _ in results)
    assert len(await journal.entries()) == 1


async def test_reserve_checks_the_poll_route(journal: SQLiteJournal) -> None:
    with pytest.raises(ValueError, match="poll_route"):
        await reserve(journal, poll_route="somewhere")


# ---------------------------------------------------------------- transitions

ALL = list(EntryState)

# (method, from state) -> resulting state, or None when the journal must refuse.
TRANSITIONS: dict[str, dict[EntryState, EntryState | None]] = {
    "mark_sending": {
        S.QUEUED: S.SENDING,
        S.REJECTED: S.SENDING,
        S.SENDING: None,
        S.AMBIGUOUS: None,
        S.SUBMITTED: None,
        S.DONE: None,
    },
    "mark_submitted": {
        S.QUEUED: S.SUBMITTED,
        S.SENDING: S.SUBMITTED,
        S.AMBIGUOUS: S.SUBMITTED,
        S.REJECTED: S.SUBMITTED,
        S.SUBMITTED: None,  # a different task id: refused
        S.DONE: None,
    },
    "attach_task": {
        S.QUEUED: S.SUBMITTED,
        S.SENDING: S.SUBMITTED,
        S.AMBIGUOUS: S.SUBMITTED,
        S.REJECTED: S.SUBMITTED,
        S.SUBMITTED: None,
        S.DONE: None,
    },
    "mark_ambiguous": {
        S.QUEUED: S.AMBIGUOUS,
        S.SENDING: S.AMBIGUOUS,
        S.AMBIGUOUS: S.AMBIGUOUS,
        S.REJECTED: S.AMBIGUOUS,
        S.SUBMITTED: None,
        S.DONE: None,
    },
    "mark_rejected": {
        S.QUEUED: S.REJECTED,
        S.SENDING: S.REJECTED,
        S.REJECTED: S.REJECTED,
        S.AMBIGUOUS: None,
        S.SUBMITTED: None,
        S.DONE: None,
    },
    "release": {
        S.QUEUED: S.QUEUED,
        S.SENDING: S.QUEUED,
        S.AMBIGUOUS: S.QUEUED,
        S.REJECTED: S.QUEUED,
        S.SUBMITTED: None,
        S.DONE: None,
    },
}


def call(j: Journal, method: str, key: str) -> Awaitable[None]:
    calls: dict[str, Callable[[], Awaitable[None]]] = {
        "mark_sending": lambda: j.mark_sending(key),
        "mark_submitted": lambda: j.mark_submitted(key, "another-task"),
        "attach_task": lambda: j.attach_task(key, "another-task"),
        "mark_ambiguous": lambda: j.mark_ambiguous(key, "disconnected after send"),
        "mark_rejected": lambda: j.mark_rejected(key, "HTTP 422", "invalid_request"),
        "release": lambda: j.release(key),
    }
    return calls[method]()


@pytest.mark.parametrize(
    ("method", "start", "expected"),
    [(m, s, e) for m, table in TRANSITIONS.items() for s, e in table.items()],
    ids=lambda v: str(v),
)
async def test_transition_table(
    journal: SQLiteJournal, method: str, start: EntryState, expected: EntryState | None
) -> None:
    await put_in_state(journal, "k", start)
    before = await journal.get("k")
    if expected is None:
        with pytest.raises(JournalError, match=r"cannot .* 'k'"):
            await call(journal, method, "k")
        assert await journal.get("k") == before  # a refused transition changes nothing
    else:
        await call(journal, method, "k")
        assert await state_of(journal, "k") == expected


def test_transition_table_is_complete() -> None:
    for table in TRANSITIONS.values():
        assert set(table) == set(ALL)


@pytest.mark.parametrize("method", sorted(TRANSITIONS))
async def test_transition_of_unknown_key_raises(journal: SQLiteJournal, method: str) -> None:
    with pytest.raises(JournalError, match="'nope': no such entry"):
        await call(journal, method, "nope")


async def test_mark_sending_a_submitted_row_says_it_would_pay_twice(
    journal: SQLiteJournal,
) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    with pytest.raises(JournalError, match="already has task task-k; sending it again would pay"):
        await journal.mark_sending("k")


async def test_mark_sending_an_interrupted_row_says_how_to_settle(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.SENDING)
    with pytest.raises(JournalError, match=r"attach_task\(\).*release\(\)"):
        await journal.mark_sending("k")


async def test_submit_path_records_every_field(path: Path) -> None:
    async with SQLiteJournal(path, clock=Clock()) as j:
        await reserve(j, "k")
        await j.mark_sending("k")
        await j.mark_submitted("k", "t-1")
        entry = await j.get("k")
        assert entry is not None
        assert entry.state is S.SUBMITTED
        assert entry.task_id == "t-1"
        assert entry.submitted_at == entry.updated_at > entry.created_at
        assert await j.get_by_task("t-1") == entry


async def test_mark_submitted_same_id_again_is_a_no_op(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    before = await journal.get("k")
    await journal.mark_submitted("k", "task-k")
    await journal.attach_task("k", "task-k")
    assert await journal.get("k") == before


async def test_mark_submitted_with_a_different_id_names_both(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    with pytest.raises(JournalError, match="with task t-2: it already has task task-k"):
        await journal.mark_submitted("k", "t-2")
    entry = await journal.get("k")
    assert entry is not None
    assert entry.task_id == "task-k"


async def test_task_id_belonging_to_another_request_is_refused(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "a", S.SUBMITTED)
    await put_in_state(journal, "b", S.SENDING)
    with pytest.raises(JournalError, match="task task-a: that task already belongs to 'a'"):
        await journal.mark_submitted("b", "task-a")
    assert await state_of(journal, "b") is S.SENDING


async def test_rejected_row_keeps_its_error_and_can_be_sent_again(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.REJECTED)
    entry = await journal.get("k")
    assert entry is not None
    assert (entry.error, entry.error_code) == ("HTTP 400 bad ratio", "invalid_request")
    assert [e.key for e in await journal.pending_submits()] == ["k"]
    await journal.mark_sending("k")
    await journal.mark_submitted("k", "t")
    entry = await journal.get("k")
    assert entry is not None
    assert entry.error is None
    assert entry.error_code is None


async def test_settle_ambiguous_by_attaching_the_task(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.AMBIGUOUS)
    assert [e.key for e in await journal.ambiguous()] == ["k"]
    await journal.attach_task("k", "found-it")
    assert await journal.ambiguous() == []
    assert [e.task_id for e in await journal.unfinished()] == ["found-it"]


async def test_settle_ambiguous_by_releasing(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.AMBIGUOUS)
    await journal.release("k")
    entry = await journal.get("k")
    assert entry is not None
    assert entry.state is S.QUEUED
    assert entry.error == "read timeout"  # kept for the record
    assert await journal.ambiguous() == []
    assert [e.key for e in await journal.pending_submits()] == ["k"]
    await journal.mark_sending("k")  # now sending again is allowed


# ---------------------------------------------------------------- record_status


async def test_record_status_progress_then_terminal(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    await status(journal, "task-k", "RUNNING", progress=0.4)
    entry = await journal.get_by_task("task-k")
    assert entry is not None
    assert (entry.state, entry.status, entry.progress) == (S.SUBMITTED, "RUNNING", 0.4)
    await status(journal, "task-k", "SUCCEEDED", progress=1.0, outputs=("u1", "u2"), terminal=True)
    entry = await journal.get_by_task("task-k")
    assert entry is not None
    assert (entry.state, entry.status, entry.outputs) == (S.DONE, "SUCCEEDED", ("u1", "u2"))
    assert await journal.unfinished() == []


async def test_record_status_failure_keeps_error(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    await status(
        journal, "task-k", "FAILED", error="moderation", error_code="SAFETY", terminal=True
    )
    entry = await journal.get("k")
    assert entry is not None
    assert (entry.state, entry.error, entry.error_code) == (S.DONE, "moderation", "SAFETY")


async def test_record_status_unknown_task_is_ignored(journal: SQLiteJournal) -> None:
    await status(journal, "nobody", "RUNNING")
    await status(journal, "nobody", "SUCCEEDED", terminal=True)
    assert await journal.entries() == []


async def test_done_row_ignores_a_stale_non_terminal_status(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.DONE)
    before = await journal.get("k")
    await status(journal, "task-k", "RUNNING", progress=0.2)
    assert await journal.get("k") == before


async def test_outputs_are_never_replaced_by_empty(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    await status(journal, "task-k", "RUNNING", outputs=("u1",))
    await status(journal, "task-k", "SUCCEEDED", terminal=True)
    entry = await journal.get("k")
    assert entry is not None
    assert entry.outputs == ("u1",)
    assert entry.state is S.DONE


async def test_identical_status_writes_nothing(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    await status(journal, "task-k", "RUNNING", progress=0.5)
    before = await journal.get("k")
    await status(journal, "task-k", "RUNNING", progress=0.5)
    assert await journal.get("k") == before  # not even updated_at moved


async def test_failed_write_behind_update_surfaces_on_the_next_call(
    journal: SQLiteJournal,
) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)

    def boom_trigger(conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TEMP TRIGGER boom BEFORE UPDATE ON entries WHEN NEW.status = 'BOOM' "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )

    await journal._call(boom_trigger, write=True)
    await status(journal, "task-k", "BOOM")  # write-behind: returns before it fails
    await journal.get("k")  # any awaited call runs after it: the failure is known now
    with pytest.raises(JournalError, match="earlier progress update could not be written"):
        await status(journal, "task-k", "RUNNING", progress=0.9)
    entry = await journal.get("k")
    assert entry is not None
    assert entry.status == "RUNNING"  # the later update still landed


async def test_a_refused_op_does_not_undo_the_others_in_its_batch(
    journal: SQLiteJournal,
) -> None:
    await put_in_state(journal, "done", S.DONE)
    for i in range(20):
        await reserve(journal, f"k{i}")
    commits: list[str] = []
    await journal._call(
        lambda conn: conn.set_trace_callback(
            lambda sql: commits.append(sql) if sql == "COMMIT" else None
        ),
        write=False,
    )
    # Hold the worker thread so that every op below is queued before it looks again: they
    # then share one transaction.
    gate = threading.Event()
    held = asyncio.ensure_future(journal._call(lambda conn: gate.wait(10), write=False))
    ops = asyncio.gather(
        *(journal.mark_sending(f"k{i}") for i in range(10)),
        journal.mark_sending("done"),
        *(journal.mark_sending(f"k{i}") for i in range(10, 20)),
        return_exceptions=True,
    )
    await asyncio.sleep(0)  # let each op queue itself
    gate.set()
    assert await held
    results = await ops
    # At most: the trace hook's read, the gate's read, and one commit for all 21 ops
    # (one transaction each would make 21).
    assert len(commits) <= 3
    assert [type(r) for r in results] == [type(None)] * 10 + [JournalError] + [type(None)] * 10
    counts = await journal.counts()
    assert counts["sending"] == 20
    assert counts["done"] == 1


async def test_cancelled_caller_still_gets_its_write(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.SENDING)
    pending = asyncio.create_task(journal.mark_submitted("k", "t-9"))
    await asyncio.sleep(0)  # let it queue its write
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    entry = await journal.get("k")
    assert entry is not None
    assert entry.task_id == "t-9"


# ---------------------------------------------------------------- track


async def test_track_makes_a_submitted_row(journal: SQLiteJournal) -> None:
    entry = await journal.track("t-x", poll_route="tasks", label="from the dashboard")
    assert (entry.key, entry.state, entry.task_id) == ("task:t-x", S.SUBMITTED, "t-x")
    assert (entry.request_type, entry.path, entry.body) == ("", "", "")
    assert entry.poll_route == "tasks"
    assert entry.submitted_at is not None
    assert await journal.track("t-x", poll_route="tasks") == entry
    assert await journal.unfinished() == [entry]


async def test_track_an_id_the_journal_knows_returns_its_row(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    entry = await journal.track("task-k", poll_route="feed")
    assert entry.key == "k"
    assert len(await journal.entries()) == 1


async def test_attach_task_folds_in_a_tracked_row(journal: SQLiteJournal) -> None:
    await put_in_state(journal, "k", S.AMBIGUOUS)
    await journal.track("t-found", poll_route="feed", label="tracked")
    await status(journal, "t-found", "SUCCEEDED", outputs=("u",), terminal=True)
    await journal.attach_task("k", "t-found")
    entries = await journal.entries()
    assert [e.key for e in entries] == ["k"]
    (entry,) = entries
    assert (entry.state, entry.task_id, entry.status, entry.outputs) == (
        S.DONE,
        "t-found",
        "SUCCEEDED",
        ("u",),
    )
    assert entry.request_type == "TextToVideo"


# ---------------------------------------------------------------- queries


async def test_queries_group_rows_by_state(path: Path) -> None:
    async with SQLiteJournal(path, clock=Clock()) as j:
        for state in ALL:
            await put_in_state(j, state.value, state)
        await put_in_state(j, "submitted-2", S.SUBMITTED)
        assert [e.key for e in await j.entries()] == [s.value for s in ALL] + ["submitted-2"]
        assert [e.key for e in await j.unfinished()] == ["submitted", "submitted-2"]
        assert [e.key for e in await j.pending_submits()] == ["queued", "rejected"]
        # This instance's own send in flight is not "interrupted".
        assert [e.key for e in await j.ambiguous()] == ["ambiguous"]
        assert [e.key for e in await j.ambiguous(include_in_flight=True)] == [
            "sending",
            "ambiguous",
        ]
        assert await j.counts() == {s.value: 1 for s in ALL} | {"submitted": 2}


async def test_unfinished_is_oldest_submission_first(journal: SQLiteJournal) -> None:
    for key in ("a", "b", "c"):
        await put_in_state(journal, key, S.SENDING)
    for key in ("c", "a", "b"):
        await journal.mark_submitted(key, f"t-{key}")
    assert [e.key for e in await journal.unfinished()] == ["c", "a", "b"]


async def test_counts_of_an_empty_journal(journal: SQLiteJournal) -> None:
    assert await journal.counts() == {s.value: 0 for s in ALL}


# ---------------------------------------------------------------- durability and crashes


async def test_rows_survive_close_and_reopen(path: Path) -> None:
    async with SQLiteJournal(path) as j:
        for state in ALL:
            await put_in_state(j, state.value, state)
        await status(j, "task-submitted", "RUNNING", progress=0.3)
        before = await j.entries()
    async with SQLiteJournal(path) as j:
        assert await j.entries() == before
        entry = await j.get("submitted")
        assert entry is not None
        assert entry.progress == 0.3
        assert [e.key for e in await j.ambiguous()] == ["sending", "ambiguous"]


async def test_sending_row_of_an_instance_that_never_closed_is_ambiguous(path: Path) -> None:
    first = SQLiteJournal(path)
    await first.open()
    await put_in_state(first, "k", S.SENDING)
    assert await first.ambiguous() == []  # its own send, still in flight
    # A second process opening the file after the first died sees an interrupted send.
    async with SQLiteJournal(path) as second:
        assert [e.key for e in await second.ambiguous()] == ["k"]
        with pytest.raises(JournalError, match="may already have reached the server"):
            await second.mark_sending("k")
        assert await second.pending_submits() == []
    await first.close()


@pytest.mark.slow
async def test_process_killed_mid_send_leaves_an_ambiguous_row(path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, os, sys
        from cometrunway.journal import SQLiteJournal

        async def main():
            j = SQLiteJournal(sys.argv[1])
            await j.open()
            await j.reserve("sent", request_type="TextToVideo", path="/p", body="{}",
                            poll_route="feed")
            await j.mark_sending("sent")
            await j.reserve("queued", request_type="TextToVideo", path="/p", body="{}",
                            poll_route="feed")
            await j.reserve("ok", request_type="TextToVideo", path="/p", body="{}",
                            poll_route="feed")
            await j.mark_sending("ok")
            await j.mark_submitted("ok", "t-ok")
            os._exit(3)  # no close, no flush: as if killed

        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(path), env=env, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 3, err.decode()
    async with SQLiteJournal(path) as j:
        assert [e.key for e in await j.ambiguous()] == ["sent"]
        assert [e.key for e in await j.pending_submits()] == ["queued"]
        assert [e.task_id for e in await j.unfinished()] == ["t-ok"]


async def test_two_writers_on_one_file_do_not_corrupt_it(path: Path) -> None:
    async with SQLiteJournal(path) as a, SQLiteJournal(path) as b:

        async def lifecycle(j: SQLiteJournal, key: str) -> None:
            await put_in_state(j, key, S.DONE)

        await asyncio.gather(
            *(lifecycle(a, f"a{i}") for i in range(40)),
            *(lifecycle(b, f"b{i}") for i in range(40)),
        )
    async with SQLiteJournal(path) as j:
        assert (await j.counts())["done"] == 80
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


async def test_another_process_holding_the_lock_fails_the_op_cleanly(path: Path) -> None:
    async with SQLiteJournal(path, busy_timeout=0) as j:
        await reserve(j, "k")
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(
                JournalError,
                match=r"cannot start a transaction: locked: another process .*database is locked",
            ):
                await j.mark_sending("k")
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert await state_of(j, "k") is S.QUEUED  # nothing half-done
        await j.mark_sending("k")
        assert await state_of(j, "k") is S.SENDING


async def test_a_journal_dropped_without_close_stops_its_thread(path: Path) -> None:
    j = SQLiteJournal(path)
    await j.open()
    await put_in_state(j, "k", S.SENDING)
    (thread,) = [t for t in threading.enumerate() if t.ident == j.worker_thread_id]
    del j
    gc.collect()
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()
    async with SQLiteJournal(path) as again:
        assert [e.key for e in await again.ambiguous()] == ["k"]


# ---------------------------------------------------------------- the file itself


async def test_file_is_marked_as_a_journal(path: Path) -> None:
    async with SQLiteJournal(path):
        pass
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        meta = dict(conn.execute("SELECT name, value FROM meta"))
        assert meta["application_id"] == str(APPLICATION_ID)
        assert meta["schema_version"] == str(SCHEMA_VERSION)
    finally:
        conn.close()


def assert_refused_untouched(path: Path, before: bytes, info: pytest.ExceptionInfo[Any]) -> None:
    assert str(path) in str(info.value)
    assert path.read_bytes() == before  # never overwritten


async def test_random_bytes_are_refused(path: Path) -> None:
    await asyncio.to_thread(path.write_bytes, os.urandom(4096))
    before = await asyncio.to_thread(path.read_bytes)
    with pytest.raises(JournalError, match="not an SQLite database") as info:
        await SQLiteJournal(path).open()
    assert_refused_untouched(path, before, info)


async def test_text_file_is_refused(path: Path) -> None:
    await asyncio.to_thread(path.write_text, "task_id,prompt\n1,a cat\n")
    with pytest.raises(JournalError, match=r"not an SQLite database \(it starts with b'task_id"):
        await SQLiteJournal(path).open()


async def test_corrupt_journal_is_refused(path: Path) -> None:
    async with SQLiteJournal(path) as j:
        for i in range(200):
            await reserve(j, f"k{i}", body="x" * 500)
    data = bytearray(await asyncio.to_thread(path.read_bytes))
    page = 4096
    assert len(data) > 4 * page
    data[2 * page : 4 * page] = os.urandom(2 * page)  # keep the header, wreck the tree
    await asyncio.to_thread(path.write_bytes, bytes(data))
    before = await asyncio.to_thread(path.read_bytes)
    with pytest.raises(JournalError, match="corrupt") as info:
        await SQLiteJournal(path).open()
    assert_refused_untouched(path, before, info)


async def test_another_applications_database_is_refused(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = await asyncio.to_thread(path.read_bytes)
    with pytest.raises(
        JournalError, match=r"another application's database \(tables: orders, users"
    ) as info:
        await SQLiteJournal(path).open()
    assert_refused_untouched(path, before, info)


async def test_foreign_application_id_is_refused(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("CREATE TABLE entries (x)")
    conn.commit()
    conn.close()
    with pytest.raises(
        JournalError, match=r"belongs to another application \(application_id 0x000004d2"
    ):
        await SQLiteJournal(path).open()


async def test_newer_schema_is_refused(path: Path) -> None:
    async with SQLiteJournal(path) as j:
        await reserve(j)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = await asyncio.to_thread(path.read_bytes)
    with pytest.raises(JournalError, match="written by a newer cometrunway") as info:
        await SQLiteJournal(path).open()
    assert_refused_untouched(path, before, info)


async def test_migration_hook_upgrades_an_older_file_in_place(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with SQLiteJournal(path) as j:
        await put_in_state(j, "k", S.SUBMITTED)

    def add_column(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE entries ADD COLUMN note TEXT")

    monkeypatch.setattr(schema_module, "MIGRATIONS", (*schema_module.MIGRATIONS, add_column))
    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    async with SQLiteJournal(path) as j:
        assert [e.key for e in await j.unfinished()] == ["k"]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
        meta = dict(conn.execute("SELECT name, value FROM meta"))
        assert meta["schema_version"] == str(SCHEMA_VERSION + 1)
        assert conn.execute("SELECT note FROM entries").fetchall() == [(None,)]
    finally:
        conn.close()


async def test_unreadable_row_is_reported(journal: SQLiteJournal) -> None:
    await reserve(journal, "k")
    await journal._call(
        lambda conn: conn.execute("UPDATE entries SET state = 'exploded'"), write=True
    )
    with pytest.raises(JournalError, match="unreadable row 'k'"):
        await journal.entries()


async def test_empty_sqlite_file_becomes_a_journal(path: Path) -> None:
    await asyncio.to_thread(path.touch)
    async with SQLiteJournal(path) as j:
        await reserve(j)
    async with SQLiteJournal(path) as j:
        assert len(await j.entries()) == 1


async def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "run.sqlite"
    with pytest.raises(JournalError, match=r"the directory .*nowhere does not exist"):
        await SQLiteJournal(target).open()
    assert not target.parent.exists()


async def test_directory_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="is a directory"):
        await SQLiteJournal(tmp_path).open()


async def test_failed_open_leaves_no_worker_thread(path: Path) -> None:
    await asyncio.to_thread(path.write_bytes, b"garbage")

    def journal_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "cometrunway-journal"}

    before = journal_threads()
    j = SQLiteJournal(path)
    with pytest.raises(JournalError):
        await j.open()
    assert not j.is_open
    with pytest.raises(JournalError, match="is not open"):
        await j.get("k")
    # The worker was told to stop when the open failed; it ends on its own.
    started = journal_threads() - before
    for thread in started:
        await asyncio.to_thread(thread.join, 10)
    assert not any(thread.is_alive() for thread in started)


# ---------------------------------------------------------------- off the event loop


async def test_every_sqlite_statement_runs_on_the_worker_thread(journal: SQLiteJournal) -> None:
    seen: set[int] = set()
    statements: list[str] = []

    def trace(sql: str) -> None:
        seen.add(threading.get_ident())
        statements.append(sql)

    await journal._call(lambda conn: conn.set_trace_callback(trace), write=False)
    for state in ALL:
        await put_in_state(journal, state.value, state)
    await status(journal, "task-submitted", "RUNNING", progress=0.5)
    await journal.entries()
    await journal.counts()
    await journal._call(lambda conn: conn.set_trace_callback(None), write=False)
    assert statements
    assert seen == {journal.worker_thread_id}
    assert threading.get_ident() not in seen


# ---------------------------------------------------------------- open_journal


async def test_open_journal_from_a_path(path: Path) -> None:
    for spec in (path, str(path)):
        j = open_journal(spec)
        assert isinstance(j, SQLiteJournal)
        assert j.path == str(path)
        assert isinstance(j, Journal)


def test_open_journal_passes_a_journal_through(path: Path) -> None:
    j = SQLiteJournal(path)
    assert open_journal(j) is j


@pytest.mark.parametrize("url", ["postgresql://u@db/runs", "postgres://db/runs"])
def test_open_journal_postgresql_selects_the_postgres_store(url: str) -> None:
    j = open_journal(url)
    assert isinstance(j, PostgresJournal) and isinstance(j, Journal)
    assert not j.is_open  # nothing connects before open()


def test_open_journal_rejects_other_urls() -> None:
    with pytest.raises(JournalError, match="unsupported journal URL scheme 'mysql'"):
        open_journal("mysql://db/runs")


def test_open_journal_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="got int"):
        open_journal(42)  # type: ignore[arg-type]


def test_sql_uses_no_numbered_placeholders() -> None:
    # Numbered placeholders warn on Python 3.12.0-3.12.3 (CPython gh-117995): with warnings
    # as errors, every journal call would fail there. Named (:name) or plain ? only.
    package = Path(journal_module.__file__).parent
    sources = [package / "journal.py"] if package.name == "cometrunway" else package.glob("*.py")
    for source in sources:
        text = Path(source).read_text(encoding="utf-8")
        assert not re.search(r"\?[0-9]", text), f"{source}: numbered SQL placeholder"
