"""What a client leaves in its journal beyond ids and statuses, end to end against
FakeCometAPI: the credits of each task (the create answer's estimate, the cost once it ended),
the cancels asked for, and a task the server did not know that ``resume()`` follows again.
A store written before ``record_status`` took credits keeps working unchanged, a journal that
cannot note a cancel never stops the cancel, and the poller's sink journals credits a poll
says for the first time even when nothing else changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from support import FAST_POLL, client_for

from cometrunway import RunwayTextToSpeech, Task, TaskFailed, TaskHandle, TaskNotFound, TaskStatus
from cometrunway._observer import TaskObserver
from cometrunway.errors import JournalError
from cometrunway.events import EventHub
from cometrunway.journal import EntryState, JournalEntry, Outcome, SQLiteJournal
from cometrunway.journal._credits import takes_credits
from cometrunway.testing import FakeCometAPI, Fault, Lifecycle
from cometrunway.testing._envelopes import CREDITS_BY_ACTION

SPEECH_CREDITS = float(CREDITS_BY_ACTION["TEXT_TO_SPEECH"])
ESTIMATE = 25.0  # a 5-second gen4_turbo (wire §8.2)
LONG = Lifecycle.by_polls(queued=1000, running=1000)  # runs until cancelled
# No poll within the test: what the row holds came from the create answer alone.
NO_POLL = attrs.evolve(FAST_POLL, initial_delay=3600.0)
# The server's "task_not_exist" ends the task at once: a grace window of nothing.
NO_GRACE = attrs.evolve(FAST_POLL, not_found_grace=0.0)


async def rows(path: Path) -> list[JournalEntry]:
    """The journal file's rows, read by a journal of its own (as a later run would)."""
    async with SQLiteJournal(path) as journal:
        return await journal.entries()


async def test_the_create_answers_estimate_is_journaled(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    async with FakeCometAPI(lifecycle=LONG) as fake:
        async with client_for(fake, poll=NO_POLL, journal=path) as client:
            handle = await client.submit(RunwayTextToSpeech("Hello there."))
            assert client.journal is not None
            (entry,) = await client.journal.entries()
            assert fake.request_count("poll") == 0
    assert (entry.task_id, entry.status) == (handle.task_id, "PENDING")
    assert (entry.estimated_cost, entry.cost) == (SPEECH_CREDITS, None)


async def test_the_cost_of_a_finished_task_is_journaled(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 1)) as fake:
        async with client_for(fake, journal=path) as client:
            task = await (await client.submit(RunwayTextToSpeech("Hello there.")))
    (entry,) = await rows(path)
    assert entry.outcome is Outcome.SUCCEEDED
    assert (entry.estimated_cost, entry.cost) == (task.estimated_cost, task.cost)
    assert entry.cost == SPEECH_CREDITS


class EarlierStore(SQLiteJournal):
    """A store written to the protocol before ``record_status`` took credits."""

    async def record_status(  # type: ignore[override]
        self,
        task_id: str,
        *,
        status: str,
        progress: float | None,
        outputs: tuple[str, ...],
        error: str | None,
        error_code: str | None,
        terminal: bool,
    ) -> None:
        await super().record_status(
            task_id,
            status=status,
            progress=progress,
            outputs=outputs,
            error=error,
            error_code=error_code,
            terminal=terminal,
        )


async def test_a_store_without_the_credit_keywords_keeps_working(tmp_path: Path) -> None:
    store = EarlierStore(tmp_path / "run.sqlite")
    assert not takes_credits(store)
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 1)) as fake:
        async with client_for(fake, journal=store) as client:
            task = await (await client.submit(RunwayTextToSpeech("Hello there.")))
    assert task.cost == SPEECH_CREDITS  # the handle still has it
    (entry,) = await rows(tmp_path / "run.sqlite")
    assert (entry.outcome, entry.estimated_cost, entry.cost) == (Outcome.SUCCEEDED, None, None)


async def test_a_cancel_asked_through_the_handle_is_in_the_journal_file(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    async with FakeCometAPI(lifecycle=LONG, allow_cancel=True) as fake:
        async with client_for(fake, journal=path) as client:
            handle = await client.submit(RunwayTextToSpeech("Stop me."))
            await handle.cancel()
            with pytest.raises(TaskFailed):
                await handle
    (entry,) = await rows(path)
    assert entry.task_id == handle.task_id
    assert entry.cancel_requested_at is not None
    assert entry.outcome is Outcome.CANCELLED
    assert entry.updated_at >= entry.cancel_requested_at >= entry.created_at


async def test_a_task_not_found_past_the_grace_is_followed_again_by_resume(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.sqlite"
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 1)) as fake:
        fake.inject("poll", Fault.task_not_exist())  # the first poll: "no such task"
        async with client_for(fake, poll=NO_GRACE, journal=path) as client:
            handle = await client.submit(RunwayTextToSpeech("Where did it go?"))
            with pytest.raises(TaskNotFound):
                await handle
        (lost,) = await rows(path)
        assert (lost.state, lost.outcome) == (EntryState.DONE, Outcome.NOT_FOUND)
        # The server knows the task now (the fault was for one poll only).
        async with client_for(fake, journal=path) as client:
            (again,) = await client.resume()
            task = await again
    assert (again.task_id, task.status) == (handle.task_id, TaskStatus.SUCCEEDED)
    (entry,) = await rows(path)
    assert (entry.key, entry.outcome) == (lost.key, Outcome.SUCCEEDED)
    assert entry.outputs


class FailingCancelJournal(SQLiteJournal):
    """A journal whose note of a cancel request fails (its disk is full, say)."""

    async def record_cancel_request(self, task_id: str) -> None:
        raise JournalError("disk full")


async def test_a_cancel_is_sent_even_when_the_journal_cannot_note_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = FailingCancelJournal(tmp_path / "run.sqlite")
    async with FakeCometAPI(lifecycle=LONG, allow_cancel=True) as fake:
        async with client_for(fake, journal=journal) as client:
            handle = await client.submit(RunwayTextToSpeech("Stop me."))
            await handle.cancel()
            with pytest.raises(TaskFailed):
                await handle
    assert [r.method for r in fake.requests if r.method == "DELETE"] == ["DELETE"]
    assert "could not journal the cancel request: disk full" in caplog.text


# ---------------------------------------------------------------- the sink's part


class StatusLog:
    """A journal stand-in that keeps the keywords of each ``record_status`` call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def record_status(self, task_id: str, **fields: Any) -> None:
        self.calls.append(fields)


class EarlierStatusLog:
    """The same, written to the protocol before credits: no such keywords."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def record_status(
        self,
        task_id: str,
        *,
        status: str,
        progress: float | None,
        outputs: tuple[str, ...],
        error: str | None,
        error_code: str | None,
        terminal: bool,
    ) -> None:
        self.calls.append(status)


async def test_the_sink_journals_new_credits_even_when_nothing_else_changed() -> None:
    sink, journal = TaskObserver(EventHub()), StatusLog()
    sink.journal = journal  # type: ignore[assignment]
    handle = TaskHandle("t-1", poll_route="tasks")
    old = Task(task_id="t-1", status=TaskStatus.RUNNING, progress=0.5)
    write = sink.updated(handle, old, attrs.evolve(old, estimated_cost=ESTIMATE))
    assert write is not None
    await write
    assert journal.calls[-1]["estimated_cost"] == ESTIMATE and "cost" not in journal.calls[-1]
    known = attrs.evolve(old, estimated_cost=ESTIMATE)
    assert sink.updated(handle, known, known) is None  # the same figure again
    assert sink.updated(handle, known, old) is None  # a poll that left the estimate out
    assert len(journal.calls) == 1


async def test_the_sink_passes_no_credits_to_a_store_without_the_keywords() -> None:
    sink, journal = TaskObserver(EventHub()), EarlierStatusLog()
    sink.journal = journal  # type: ignore[assignment]
    handle = TaskHandle("t-1", poll_route="tasks")
    done = Task(task_id="t-1", status=TaskStatus.SUCCEEDED, cost=ESTIMATE, estimated_cost=5.0)
    write = sink.updated(handle, None, done)
    assert write is not None
    await write  # a TypeError here would be an unexpected keyword
    assert journal.calls == ["SUCCEEDED"]
