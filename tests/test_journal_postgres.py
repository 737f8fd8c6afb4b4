"""The PostgreSQL journal beyond the conformance suite: the driver extra, the schema, poll
leases across workers and cross-worker wake-ups, on a throwaway server (``pg_server.py``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from journal_rows import finish

from cometrunway.errors import JournalError
from cometrunway.journal import EntryState, Outcome, PostgresJournal, RowChange
from cometrunway.journal._pg_schema import PG_SCHEMA_VERSION, redact

psycopg = pytest.importorskip(
    "psycopg", reason="needs the postgres extra: pip install -e '.[postgres]'"
)

PATH = "/runway/pro/generate"
# Wake-ups must reach another worker within this (the bound).
WAKE_UP_BOUND_SECONDS = 1.0
TASKS = 12


@pytest.fixture
async def pair(postgres_url: str) -> AsyncIterator[tuple[PostgresJournal, PostgresJournal]]:
    """Two workers on one database."""
    async with PostgresJournal(postgres_url) as a, PostgresJournal(postgres_url) as b:
        yield a, b


async def claim(j: PostgresJournal, key: str, body: str = '{"p":1}') -> bool:
    entry, claimed = await j.reserve_sending(
        key, request_type="TextToVideo", path=PATH, body=body, poll_route="feed"
    )
    return claimed


async def submitted(j: PostgresJournal, n: int) -> list[str]:
    ids = []
    for i in range(n):
        assert await claim(j, f"k{i}", body=f'{{"p":{i}}}')
        await j.mark_submitted(f"k{i}", f"t{i}")
        ids.append(f"t{i}")
    return ids


# ---------------------------------------------------------------- driver and URL


def test_the_driver_is_not_imported_until_a_postgres_journal_opens() -> None:
    code = (
        "import sys, cometrunway, cometrunway.journal as j\n"
        "j.open_journal('postgresql://u@h/db')\n"
        "print('psycopg' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an absent package looks like
    with pytest.raises(JournalError, match=r"pip install 'cometrunway\[postgres\]'"):
        await PostgresJournal("postgresql://u@127.0.0.1:1/db").open()


def test_the_password_never_shows() -> None:
    url = "postgresql://runs:s3cret@db.example:5432/jobs"
    journal = PostgresJournal(url)
    assert "s3cret" not in repr(journal)
    assert redact(url) == "postgresql://runs:***@db.example:5432/jobs"
    assert redact("postgresql://h/db?sslmode=require&password=s3cret") == (
        "postgresql://h/db?sslmode=require&password=***"
    )


async def test_an_unreachable_server_is_a_journal_error_without_the_password() -> None:
    journal = PostgresJournal("postgresql://u:s3cret@127.0.0.1:1/db", connect_timeout=2)
    with pytest.raises(JournalError, match="cannot connect") as info:
        await journal.open()
    assert "s3cret" not in str(info.value)


def test_max_connections_is_checked() -> None:
    with pytest.raises(ValueError, match="max_connections must be at least 1"):
        PostgresJournal("postgresql://h/db", max_connections=0)


# ---------------------------------------------------------------- schema


async def test_the_schema_is_made_once_by_workers_starting_together(postgres_url: str) -> None:
    journals = [PostgresJournal(postgres_url, max_connections=1) for _ in range(4)]
    await asyncio.gather(*(j.open() for j in journals))
    try:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute(
                "SELECT value FROM cometrunway_meta WHERE name = 'schema_version'"
            ).fetchone()
        assert row is not None and int(row[0]) == PG_SCHEMA_VERSION
    finally:
        await asyncio.gather(*(j.close() for j in journals))


async def test_a_newer_schema_is_refused_untouched(postgres_url: str) -> None:
    async with PostgresJournal(postgres_url):
        pass
    with psycopg.connect(postgres_url) as conn:
        conn.execute("UPDATE cometrunway_meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(JournalError, match=r"newer cometrunway .*99"):
        await PostgresJournal(postgres_url).open()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT value FROM cometrunway_meta").fetchone() == ("99",)


async def test_calls_on_a_closed_journal_say_so(postgres_url: str) -> None:
    journal = PostgresJournal(postgres_url)
    with pytest.raises(JournalError, match="is not open"):
        await journal.entries()


# ---------------------------------------------------------------- races across workers


async def test_two_workers_racing_on_one_prompt_create_it_once_and_the_loser_gets_the_task(
    pair: tuple[PostgresJournal, PostgresJournal],
) -> None:
    a, b = pair
    wins = await asyncio.gather(claim(a, "same"), claim(b, "same"))
    assert sorted(wins) == [False, True]
    winner, loser = (a, b) if wins[0] else (b, a)
    waiting = asyncio.ensure_future(loser.wait_sent("same", within=10))
    await winner.mark_submitted("same", "t-won")
    entry = await asyncio.wait_for(waiting, WAKE_UP_BOUND_SECONDS)
    assert entry is not None and (entry.state, entry.task_id) == (EntryState.SUBMITTED, "t-won")


async def test_a_dead_senders_row_is_ambiguous_to_the_others(postgres_url: str) -> None:
    async with PostgresJournal(postgres_url) as survivor:
        doomed = PostgresJournal(postgres_url)
        await doomed.open()
        assert await claim(doomed, "k")
        assert await survivor.ambiguous() == []  # in flight on a live worker
        await doomed.close()
        assert await survivor.wait_gone(doomed.instance_id, within=10)
        assert [e.key for e in await survivor.ambiguous()] == ["k"]
        # And a loser waiting on it stops waiting once the sender is gone.
        entry = await survivor.wait_sent("k", within=10)
        assert entry is not None and entry.state is EntryState.SENDING


# ---------------------------------------------------------------- poll leases


async def test_each_task_is_leased_to_one_worker(
    pair: tuple[PostgresJournal, PostgresJournal],
) -> None:
    a, b = pair
    ids = await submitted(a, TASKS)
    got_a, got_b = await asyncio.gather(a.claim_polls(TASKS), b.claim_polls(TASKS))
    held_a = {e.task_id for e in got_a}
    held_b = {e.task_id for e in got_b}
    assert not held_a & held_b
    assert held_a | held_b == set(ids)
    leases = await a.leases()
    assert {t for t, owner in leases.items() if owner == a.instance_id} == held_a
    assert await a.claim_polls(TASKS) == []  # nothing left to claim


async def test_renew_keeps_held_leases_and_drops_finished_ones(
    pair: tuple[PostgresJournal, PostgresJournal],
) -> None:
    a, b = pair
    ids = await submitted(a, 3)
    assert len(await a.claim_polls(3)) == 3
    await finish(b, ids[0])
    assert await a.renew_polls(ids) == set(ids[1:])
    assert await b.renew_polls(ids) == set()  # b holds none of them


async def test_a_dead_workers_leases_expire_and_another_takes_its_tasks(
    pair: tuple[PostgresJournal, PostgresJournal],
) -> None:
    a, b = pair
    ids = await submitted(a, 4)
    short = 0.3
    assert len(await a.claim_polls(4, lease_seconds=short)) == 4
    assert await b.claim_polls(4) == []
    await a.close()  # a dies: it renews nothing from now on
    taken = await until(lambda: b.claim_polls(4), within=short + 2)
    assert {e.task_id for e in taken} == set(ids)


async def test_released_leases_are_claimable_at_once(
    pair: tuple[PostgresJournal, PostgresJournal],
) -> None:
    a, b = pair
    ids = await submitted(a, 2)
    await a.claim_polls(2)
    await a.release_polls(ids)
    assert {e.task_id for e in await b.claim_polls(2)} == set(ids)


@pytest.mark.parametrize(("limit", "lease"), [(0, 1.0), (1, 0.0)])
async def test_bad_lease_arguments_are_refused(
    pair: tuple[PostgresJournal, PostgresJournal], limit: int, lease: float
) -> None:
    with pytest.raises(ValueError, match=r"limit|lease_seconds"):
        await pair[0].claim_polls(limit, lease_seconds=lease)


# ---------------------------------------------------------------- wake-ups


async def test_a_result_seen_by_worker_b_wakes_worker_a(
    pair: tuple[PostgresJournal, PostgresJournal],
) -> None:
    a, b = pair
    (task_id,) = await submitted(a, 1)
    waiting = asyncio.ensure_future(a.wait_finished(task_id, within=10))
    await finish(b, task_id)  # b heard it: a callback or a poll
    entry = await asyncio.wait_for(waiting, WAKE_UP_BOUND_SECONDS)
    assert entry is not None and entry.outcome is Outcome.SUCCEEDED
    assert entry.outputs == ("https://cdn/v.mp4",)


async def test_wait_finished_returns_at_once_for_a_finished_task(
    pair: tuple[PostgresJournal, PostgresJournal],
) -> None:
    a, b = pair
    (task_id,) = await submitted(a, 1)
    await finish(a, task_id)
    entry = await asyncio.wait_for(b.wait_finished(task_id, within=10), WAKE_UP_BOUND_SECONDS)
    assert entry is not None and entry.state is EntryState.DONE


async def test_wait_finished_gives_up_after_its_time(
    pair: tuple[PostgresJournal, PostgresJournal],
) -> None:
    a, _ = pair
    (task_id,) = await submitted(a, 1)
    entry = await a.wait_finished(task_id, within=0.05)
    assert entry is not None and entry.state is EntryState.SUBMITTED


async def test_listeners_hear_every_workers_changes(
    pair: tuple[PostgresJournal, PostgresJournal],
) -> None:
    a, b = pair
    heard: list[RowChange] = []
    done = asyncio.Event()

    def listener(change: RowChange) -> None:
        heard.append(change)
        if change.state == EntryState.DONE:
            done.set()

    a.add_listener(listener)
    (task_id,) = await submitted(b, 1)
    await finish(b, task_id)
    await asyncio.wait_for(done.wait(), WAKE_UP_BOUND_SECONDS)
    assert [c.state for c in heard] == ["submitted", "done"]
    assert heard[-1] == RowChange("k0", task_id, "done", "SUCCEEDED")
    a.remove_listener(listener)


async def until(attempt: Callable[[], Awaitable[list[Any]]], *, within: float) -> list[Any]:
    """Repeat ``attempt`` until it returns something, for at most ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = await attempt()
        if found or loop.time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_finished_rows_reads_the_done_rows_of_many_tasks_at_once(
    pair: tuple[PostgresJournal, PostgresJournal],
) -> None:
    a, b = pair
    ids = await submitted(a, 4)
    for task_id in ids[:2]:
        await finish(a, task_id)
    rows = await b.finished_rows([*ids, "never-journaled"])
    assert sorted(entry.task_id or "" for entry in rows) == ids[:2]
    assert all(entry.state is EntryState.DONE for entry in rows)
    assert await b.finished_rows([]) == []
