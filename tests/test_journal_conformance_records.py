"""The conformance suite, continued: credits, cancel requests and not-found rows on every store.

Same stores and fixtures as ``test_journal_conformance.py`` (SQLite, and PostgreSQL on the
throwaway server). What a store must do with:

* credits: ``record_status(..., estimated_cost=, cost=)`` keeps what the server said, a
  figure left out never erases one, and a bad figure is refused naming the keyword;
* cancel requests: ``record_cancel_request`` keeps when a cancel was first asked for;
* NOT_FOUND rows: ``unfinished()`` lists them again, a later status reopens them, and
  ``track()`` of their id reopens them; no other finished row moves;
* old files and databases: a journal written at the previous schema version opens, is
  migrated, and takes the new columns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from journal_stores import STORE_NAMES, PostgresStore, SQLiteStore, StoreFactory, make_store
from test_journal_conformance import claim, finish, put_in_state, state_of

from cometrunway.journal import (
    TRANSITIONS,
    Action,
    CancelRecorder,
    EntryState,
    Journal,
    JournalEntry,
    Outcome,
)
from cometrunway.journal import _pg_schema as pg_schema
from cometrunway.journal import _schema as sqlite_schema
from cometrunway.journal import _transitions as transitions_module

S = EntryState
# Credits as Runway states them (wire §8.2): a 5-second gen4_turbo costs 25.
ESTIMATE = 25.0
SPENT = 24.5


@pytest.fixture(params=STORE_NAMES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return make_store(request.param, tmp_path, url)


@pytest.fixture
async def journal(store: StoreFactory) -> AsyncIterator[Journal]:
    j = store.journal()
    await j.open()
    try:
        yield j
    finally:
        await j.close()


async def ask_cancel(j: Journal, task_id: str) -> None:
    assert isinstance(j, CancelRecorder)  # both stores record cancel requests
    await j.record_cancel_request(task_id)


async def running(j: Journal, task_id: str, **credits: Any) -> None:
    await j.record_status(
        task_id,
        status="RUNNING",
        progress=0.5,
        outputs=(),
        error=None,
        error_code=None,
        terminal=False,
        **credits,
    )


async def entry_of(j: Journal, key: str) -> JournalEntry:
    entry = await j.get(key)
    assert entry is not None
    return entry


# ---------------------------------------------------------------- the table


def test_reopen_is_in_the_table_for_not_found_rows_only() -> None:
    reopen = TRANSITIONS[Action.REOPEN]
    assert (reopen.sources, reopen.target) == ({S.DONE}, S.SUBMITTED)
    assert reopen.accepts(S.DONE, Outcome.NOT_FOUND.value)
    for outcome in set(Outcome) - {Outcome.NOT_FOUND}:
        assert not reopen.accepts(S.DONE, outcome.value), outcome
    assert not reopen.accepts(S.SUBMITTED, Outcome.NOT_FOUND.value)
    assert transitions_module.guard(Action.REOPEN) == (
        "(state IN ('done') AND status IN ('NOT_FOUND'))"
    )
    refused = transitions_module.refusal(
        Action.REOPEN, key="k", state=S.QUEUED, task_id=None, where="here"
    )
    assert "(only done (NOT_FOUND) rows can be)" in str(refused)


# ---------------------------------------------------------------- credits


async def test_credits_are_kept_and_a_figure_left_out_erases_nothing(journal: Journal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    fresh = await entry_of(journal, "k")
    assert (fresh.estimated_cost, fresh.cost) == (None, None)
    await running(journal, "task-k", estimated_cost=ESTIMATE)
    await running(journal, "task-k")  # a poll that says nothing of credits
    entry = await entry_of(journal, "k")
    assert (entry.estimated_cost, entry.cost) == (ESTIMATE, None)
    await finish(journal, "task-k", Outcome.SUCCEEDED, outputs=("https://v/1.mp4",), cost=SPENT)
    entry = await entry_of(journal, "k")
    assert (entry.state, entry.estimated_cost, entry.cost) == (S.DONE, ESTIMATE, SPENT)


async def test_new_credits_alone_are_written(journal: Journal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    await running(journal, "task-k")
    await running(journal, "task-k", estimated_cost=ESTIMATE)  # same status, new estimate
    assert (await entry_of(journal, "k")).estimated_cost == ESTIMATE
    await running(journal, "task-k", estimated_cost=ESTIMATE + 1)  # a revised estimate
    assert (await entry_of(journal, "k")).estimated_cost == ESTIMATE + 1


async def test_a_finished_row_takes_a_late_cost(journal: Journal) -> None:
    await put_in_state(journal, "k", S.DONE)
    await finish(journal, "task-k", Outcome.SUCCEEDED, cost=SPENT)
    entry = await entry_of(journal, "k")
    assert (entry.state, entry.outcome, entry.cost) == (S.DONE, Outcome.SUCCEEDED, SPENT)
    assert entry.outputs == ("https://v/1.mp4",)


@pytest.mark.parametrize(
    ("credits", "error", "message"),
    [
        ({"estimated_cost": -1.0}, ValueError, "estimated_cost must be a finite number"),
        ({"cost": float("nan")}, ValueError, "cost must be a finite number"),
        ({"cost": "25"}, TypeError, "cost must be a number of credits"),
        ({"estimated_cost": True}, TypeError, "estimated_cost must be a number"),
    ],
)
async def test_bad_credits_are_refused_naming_the_keyword(
    journal: Journal, credits: dict[str, Any], error: type[Exception], message: str
) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    with pytest.raises(error, match=message):
        await running(journal, "task-k", **credits)
    assert (await entry_of(journal, "k")).status is None


async def test_attaching_a_tracked_id_keeps_its_credits_and_cancel(journal: Journal) -> None:
    await journal.track("t-1", poll_route="tasks")
    await running(journal, "t-1", estimated_cost=ESTIMATE)
    await ask_cancel(journal, "t-1")
    await put_in_state(journal, "k", S.AMBIGUOUS)
    await journal.attach_task("k", "t-1")
    entry = await entry_of(journal, "k")
    assert (entry.task_id, entry.estimated_cost) == ("t-1", ESTIMATE)
    assert entry.cancel_requested_at is not None
    assert [e.key for e in await journal.entries()] == ["k"]


# ---------------------------------------------------------------- cancel requests


async def test_a_cancel_request_is_kept_with_its_first_time(journal: Journal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    assert (await entry_of(journal, "k")).cancel_requested_at is None
    await ask_cancel(journal, "task-k")
    first = (await entry_of(journal, "k")).cancel_requested_at
    assert isinstance(first, float)
    await ask_cancel(journal, "task-k")
    entry = await entry_of(journal, "k")
    assert (entry.cancel_requested_at, entry.state) == (first, S.SUBMITTED)


async def test_a_cancel_request_for_an_unknown_id_is_ignored(journal: Journal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    await ask_cancel(journal, "nobody")
    assert [e.cancel_requested_at for e in await journal.entries()] == [None]


# ---------------------------------------------------------------- not-found rows


async def test_a_not_found_row_is_listed_again_and_a_status_reopens_it(journal: Journal) -> None:
    await put_in_state(journal, "lost", S.SUBMITTED)
    await put_in_state(journal, "failed", S.SUBMITTED)
    await finish(journal, "task-lost", Outcome.NOT_FOUND, error="unknown", error_code="nf")
    await finish(journal, "task-failed", Outcome.FAILED, error="moderation")
    assert [e.key for e in await journal.unfinished()] == ["lost"]
    await running(journal, "task-lost")  # the server knows it after all
    entry = await entry_of(journal, "lost")
    assert (entry.state, entry.status, entry.error) == (S.SUBMITTED, "RUNNING", None)
    await running(journal, "task-failed")  # a stale poll never reopens another outcome
    assert await state_of(journal, "failed") is S.DONE
    await finish(journal, "task-lost", Outcome.SUCCEEDED, outputs=("https://v/2.mp4",))
    assert (await entry_of(journal, "lost")).outcome is Outcome.SUCCEEDED
    assert await journal.unfinished() == []


async def test_track_reopens_a_not_found_row_and_no_other(journal: Journal) -> None:
    await put_in_state(journal, "lost", S.SUBMITTED)
    await finish(journal, "task-lost", Outcome.NOT_FOUND, error="unknown", error_code="nf")
    reopened = await journal.track("task-lost", poll_route="feed")
    assert (reopened.key, reopened.state, reopened.status) == ("lost", S.SUBMITTED, None)
    assert reopened.error is None
    assert [e.key for e in await journal.unfinished()] == ["lost"]
    await put_in_state(journal, "done", S.DONE)
    kept = await journal.track("task-done", poll_route="feed")
    assert (kept.state, kept.outcome) == (S.DONE, Outcome.SUCCEEDED)


# ---------------------------------------------------------------- older journals


def written_at_the_previous_version(store: StoreFactory) -> None:
    """A journal as the previous schema version (1) left it: one SUBMITTED row."""
    row = (
        "INSERT INTO {table} (key, request_type, path, body, poll_route, state, task_id, "
        "created_at, updated_at, submitted_at) VALUES ('old', 'TextToVideo', "
        "'/runway/pro/generate', '{{}}', 'feed', 'submitted', 't-old', 1.0, 1.0, 1.0)"
    )
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path, isolation_level=None)
        try:
            conn.execute("BEGIN")
            sqlite_schema.MIGRATIONS[0](conn)
            conn.execute(f"PRAGMA application_id = {sqlite_schema.APPLICATION_ID}")
            conn.execute("PRAGMA user_version = 1")
            conn.execute(row.format(table="entries"))
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    assert isinstance(store, PostgresStore)
    import psycopg

    with psycopg.connect(store.url) as conn:
        conn.execute(pg_schema.MIGRATIONS[0].encode())
        conn.execute("INSERT INTO cometrunway_meta VALUES ('schema_version', '1')")
        conn.execute(row.format(table="cometrunway_entries").encode())


async def test_a_journal_of_the_previous_version_opens_and_migrates(store: StoreFactory) -> None:
    written_at_the_previous_version(store)
    j = store.journal()
    await j.open()
    try:
        (old,) = await j.unfinished()
        assert (old.key, old.task_id, old.estimated_cost, old.cost) == ("old", "t-old", None, None)
        assert old.cancel_requested_at is None
        await running(j, "t-old", estimated_cost=ESTIMATE)
        await ask_cancel(j, "t-old")
        entry = await entry_of(j, "old")
        assert entry.estimated_cost == ESTIMATE and entry.cancel_requested_at is not None
        assert await claim(j, "new")  # the migrated journal takes new rows as before
    finally:
        await j.close()
