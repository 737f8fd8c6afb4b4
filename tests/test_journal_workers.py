"""Several worker processes on one PostgreSQL journal and one fake CometAPI process.

Each worker is ``tests/pg_worker.py``, written against the ``Client`` alone; the fake is
``python -m cometrunway.testing``, and what happened is counted on its side: the tasks it
created (``GET /_fake/tasks``) and who polled which task when (``GET /_fake/polls``, each
worker signing its requests). Each prompt is created once across the fleet, nothing is
lost, each task is polled by one worker at a time, callbacks delivered to a random worker
settle handles everywhere, and a worker killed with SIGKILL mid-batch has its tasks finished
by the others.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fleet_support import handovers, overlapping, polls_by_task

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
#: The workers' poll lease (short, so a takeover fits in a test: a parameter, not a sleep).
LEASE_SECONDS = 1.0
#: Two workers may both poll a task only around a lease handover: the old holder's poll in
#: flight, or its polls until its next renewal (a third of the lease) tells it to stop.
HANDOVER_SLACK = LEASE_SECONDS


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


def fake_get(base_url: str, what: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base_url}/_fake/{what}") as answer:
        rows: list[dict[str, Any]] = json.load(answer)[what]
    return rows


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
        [
            sys.executable,
            str(WORKER),
            db,
            base_url,
            *prompts,
            "--lease",
            str(LEASE_SECONDS),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(worker: subprocess.Popen[str]) -> tuple[int, dict[str, Any] | None, str]:
    out, err = worker.communicate(timeout=PROCESS_TIMEOUT_SECONDS)
    lines = [line for line in out.strip().splitlines() if line.startswith("{")]
    report = json.loads(lines[-1]) if lines else None
    return worker.returncode, report, err


async def journal_rows(db: str) -> dict[str, Any]:
    async with PostgresJournal(db) as journal:
        return {e.task_id: e for e in await journal.entries() if e.task_id is not None}


def assert_one_poller_at_a_time(base_url: str) -> dict[str, list[tuple[float, str]]]:
    timelines = polls_by_task(fake_get(base_url, "polls"))
    bad = {t: overlapping(line, HANDOVER_SLACK) for t, line in timelines.items()}
    assert {t: b for t, b in bad.items() if b} == {}
    return timelines


def shares_of(prompts: list[str], workers: int) -> list[list[str]]:
    # Overlapping slices: every prompt goes to two workers (or more), in different orders.
    step = PROMPTS // workers
    shares = [
        [prompts[(w * step + i) % PROMPTS] for i in range(PER_WORKER)][:: 1 if w % 2 else -1]
        for w in range(workers)
    ]
    assert set().union(*map(set, shares)) == set(prompts)
    return shares


@pytest.mark.parametrize("workers", [2, 4])
async def test_a_batch_split_across_workers_with_duplicates_creates_each_prompt_once(
    postgres_url: str, fake_url: str, workers: int, started: list[subprocess.Popen[str]]
) -> None:
    prompts = [f"fleet prompt {i}" for i in range(PROMPTS)]
    shares = shares_of(prompts, workers)
    fleet = [start(postgres_url, fake_url, s, "--name", f"w{i}") for i, s in enumerate(shares)]
    started.extend(fleet)
    results = [await asyncio.to_thread(finish, w) for w in fleet]
    assert [code for code, _, _ in results] == [0] * workers, [err for *_, err in results]

    tasks = fake_get(fake_url, "tasks")
    per_prompt = collections.Counter(t["prompt"] for t in tasks)
    assert per_prompt == dict.fromkeys(prompts, 1)  # 0 created twice, none missing
    rows = await journal_rows(postgres_url)
    assert {t["task_id"] for t in tasks} == set(rows)  # 0 lost
    assert {e.state for e in rows.values()} == {EntryState.DONE}
    # Every handle, created or reused, ended with the task's result.
    for _, report, _ in results:
        assert report is not None and set(report["results"].values()) == {"SUCCEEDED"}
    created = [t for _, report, _ in results if report for t in report["created"]]
    assert sorted(created) == sorted(rows)  # each task created by exactly one worker
    timelines = assert_one_poller_at_a_time(fake_url)
    assert set(timelines) == set(rows)


class Balancer:
    """A callback endpoint that forwards each post to a random worker's receiver (a load
    balancer in front of the fleet). Posts wait until ``ready`` (the receivers are known)."""

    def __init__(self) -> None:
        self.url = ""
        self.targets: list[str] = []
        self.landed: collections.Counter[str] = collections.Counter()
        self.ready = asyncio.Event()


@pytest.fixture
async def balancer() -> AsyncIterator[Balancer]:
    found = Balancer()
    targets, landed = found.targets, found.landed
    pick = random.Random(7)

    async with aiohttp.ClientSession() as session:

        async def forward(request: web.Request) -> web.Response:
            await found.ready.wait()
            target = pick.choice(targets)
            landed[target] += 1
            headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
            async with session.post(
                target, params=request.query, data=await request.read(), headers=headers
            ) as answer:
                return web.Response(status=answer.status, body=await answer.read())

        app = web.Application()
        app.router.add_post("/runway/callback", forward)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        try:
            found.url = f"http://{host}:{port}/runway/callback"
            yield found
        finally:
            await runner.cleanup()


@pytest.mark.parametrize("workers", [2, 4])
async def test_callbacks_landing_on_a_random_worker_settle_handles_everywhere(
    postgres_url: str,
    fake_url: str,
    workers: int,
    started: list[subprocess.Popen[str]],
    balancer: Balancer,
) -> None:
    url, targets, landed = balancer.url, balancer.targets, balancer.landed
    prompts = [f"callback prompt {i}" for i in range(PROMPTS)]
    shares = shares_of(prompts, workers)
    fleet = [
        start(postgres_url, fake_url, s, "--name", f"w{i}", "--callback-url", url)
        for i, s in enumerate(shares)
    ]
    started.extend(fleet)
    for worker in fleet:  # each worker says where its receiver listens
        assert worker.stdout is not None
        line = await asyncio.to_thread(worker.stdout.readline)
        assert line.startswith("LISTEN "), line
        targets.append(line.split()[1])
    balancer.ready.set()
    # Workers poll once a minute: done within the test only through callbacks' wake-ups.
    results = [await asyncio.to_thread(finish, w) for w in fleet]
    assert [code for code, _, _ in results] == [0] * workers, [err for *_, err in results]
    for _, report, _ in results:
        assert report is not None and set(report["results"].values()) == {"SUCCEEDED"}
    tasks = fake_get(fake_url, "tasks")
    assert collections.Counter(t["prompt"] for t in tasks) == dict.fromkeys(prompts, 1)
    assert sum(landed.values()) >= len(tasks) and len(landed) == workers
    timelines = assert_one_poller_at_a_time(fake_url)
    # A woken holder confirmed each result with a real poll: never more than a few each.
    assert max(len(line) for line in timelines.values()) <= 4


async def test_a_killed_workers_tasks_are_finished_by_the_others(
    postgres_url: str, fake_url: str, started: list[subprocess.Popen[str]]
) -> None:
    doomed_prompts = [f"doomed prompt {i}" for i in range(PER_WORKER)]
    doomed = start(postgres_url, fake_url, doomed_prompts, "--name", "doomed", "--kill-after", "4")
    started.append(doomed)
    code, _, _ = await asyncio.to_thread(finish, doomed)
    assert code == -signal.SIGKILL
    survivors = [
        start(
            postgres_url,
            fake_url,
            [f"survivor {w} prompt {i}" for i in range(4)],
            "--name",
            f"s{w}",
        )
        for w in range(2)
    ]
    started.extend(survivors)
    results = [await asyncio.to_thread(finish, w) for w in survivors]
    assert [c for c, _, _ in results] == [0, 0], [err for *_, err in results]

    tasks = fake_get(fake_url, "tasks")
    assert max(collections.Counter(t["prompt"] for t in tasks).values()) == 1
    rows = await journal_rows(postgres_url)
    doomed_tasks = {t["task_id"] for t in tasks if t["prompt"] in doomed_prompts}
    # Every doomed task whose id reached the journal was finished, polled by a survivor.
    journaled = doomed_tasks & set(rows)
    assert len(journaled) >= 4
    assert all(rows[t].state is EntryState.DONE for t in journaled)
    timelines = assert_one_poller_at_a_time(fake_url)
    for task_id in journaled:
        assert timelines[task_id][-1][1] in {"s0", "s1"}
        assert handovers(timelines[task_id]) <= 1  # doomed, then one survivor
    # A task created in the instant before the kill without its id journaled is listed as
    # ambiguous (its row is SENDING with a dead sender), never lost silently or resent.
    async with PostgresJournal(postgres_url) as journal:
        ambiguous = await journal.ambiguous()
    assert len(doomed_tasks - journaled) <= len(ambiguous)
    assert all("doomed prompt" in e.body for e in ambiguous)
