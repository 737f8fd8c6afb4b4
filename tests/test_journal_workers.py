"""Several worker processes on one PostgreSQL journal and one fake CometAPI process.

Each worker is ``tests/pg_worker.py``; the fake is ``python -m cometrunway.testing``, and
what it created is counted on its side (``GET /_fake/tasks``): each prompt created once
across the fleet, and a worker killed with SIGKILL mid-batch has its tasks finished by the
others.
"""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("psycopg", reason="needs the postgres extra: pip install -e '.[postgres]'")

from cometrunway.journal import EntryState, PostgresJournal

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "pg_worker.py"
# Long enough that the fleet overlaps and a kill lands while tasks are running.
TASK_SECONDS = "1.0"
# Generous: a loaded CI machine runs 4 workers, a fake and a server on 2 cores.
PROCESS_TIMEOUT_SECONDS = 300
PROMPTS = 24
PER_WORKER = 12


@pytest.fixture
def fake_url() -> Iterator[str]:
    fake = subprocess.Popen(
        [sys.executable, "-m", "cometrunway.testing", "--port", "0", "--running-for", TASK_SECONDS],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        yield fake.stdout.readline().strip()
    finally:
        fake.send_signal(signal.SIGTERM)
        fake.wait(timeout=PROCESS_TIMEOUT_SECONDS)
        if fake.stdout is not None:
            fake.stdout.close()


def fake_tasks(base_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base_url}/_fake/tasks") as answer:
        tasks: list[dict[str, Any]] = json.load(answer)["tasks"]
    return tasks


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Worker processes a test starts; any still running at its end are killed and reaped."""
    workers: list[subprocess.Popen[str]] = []
    yield workers
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
        worker.communicate()


def start(db: str, base_url: str, prompts: list[str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), db, base_url, *prompts, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(worker: subprocess.Popen[str]) -> tuple[int, dict[str, Any] | None, str]:
    out, err = worker.communicate(timeout=PROCESS_TIMEOUT_SECONDS)
    report = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    return worker.returncode, report, err


async def journal_rows(db: str) -> dict[str, Any]:
    async with PostgresJournal(db) as journal:
        return {e.task_id: e for e in await journal.entries() if e.task_id is not None}


@pytest.mark.parametrize("workers", [2, 4])
async def test_a_batch_split_across_workers_with_duplicates_creates_each_prompt_once(
    postgres_url: str, fake_url: str, workers: int, started: list[subprocess.Popen[str]]
) -> None:
    prompts = [f"fleet prompt {i}" for i in range(PROMPTS)]
    # Overlapping slices: every prompt goes to two workers (or more), in different orders.
    step = PROMPTS // workers
    shares = [
        [prompts[(w * step + i) % PROMPTS] for i in range(PER_WORKER)][:: 1 if w % 2 else -1]
        for w in range(workers)
    ]
    assert set().union(*map(set, shares)) == set(prompts)
    fleet = [start(postgres_url, fake_url, share) for share in shares]
    started.extend(fleet)
    results = [finish(w) for w in fleet]
    assert [code for code, _, _ in results] == [0] * workers, [err for *_, err in results]

    tasks = fake_tasks(fake_url)
    per_prompt = collections.Counter(t["prompt"] for t in tasks)
    assert per_prompt == dict.fromkeys(prompts, 1)  # 0 created twice, none missing
    rows = await journal_rows(postgres_url)
    assert {t["task_id"] for t in tasks} == set(rows)  # 0 lost
    assert {e.state for e in rows.values()} == {EntryState.DONE}
    # No task was leased to two workers at once: each was leased by one creator, taken over
    # once that lease lapsed (a worker too busy to renew in time), or had finished before
    # anyone leased it and was followed through the journal (reused).
    created = [t for _, report, _ in results if report for t in report["created"]]
    taken_over = [t for _, report, _ in results if report for t in report["taken_over"]]
    reused = [t for _, report, _ in results if report for t in report["reused"]]
    assert len(set(created)) == len(created)
    assert set(created) | set(taken_over) | set(reused) == set(rows)


async def test_a_killed_workers_tasks_are_finished_by_the_others(
    postgres_url: str, fake_url: str, started: list[subprocess.Popen[str]]
) -> None:
    doomed_prompts = [f"doomed prompt {i}" for i in range(PER_WORKER)]
    doomed = start(postgres_url, fake_url, doomed_prompts, "--kill-after", "4")
    started.append(doomed)
    code, _, _ = finish(doomed)
    assert code == -signal.SIGKILL
    survivors = [
        start(postgres_url, fake_url, [f"survivor {w} prompt {i}" for i in range(4)])
        for w in range(2)
    ]
    started.extend(survivors)
    results = [finish(w) for w in survivors]
    assert [c for c, _, _ in results] == [0, 0], [err for *_, err in results]

    tasks = fake_tasks(fake_url)
    assert max(collections.Counter(t["prompt"] for t in tasks).values()) == 1
    rows = await journal_rows(postgres_url)
    doomed_tasks = {t["task_id"] for t in tasks if t["prompt"] in doomed_prompts}
    taken_over = {t for _, report, _ in results if report for t in report["taken_over"]}
    # Every doomed task whose id reached the journal was finished by a survivor.
    journaled = doomed_tasks & set(rows)
    assert len(journaled) >= 4 and journaled <= taken_over
    assert all(rows[t].state is EntryState.DONE for t in journaled)
    # A task created in the instant before the kill without its id journaled is listed as
    # ambiguous (its row is SENDING with a dead sender), never lost silently or resent.
    async with PostgresJournal(postgres_url) as journal:
        ambiguous = await journal.ambiguous()
    assert len(doomed_tasks - journaled) <= len(ambiguous)
    assert all("doomed prompt" in e.body for e in ambiguous)
