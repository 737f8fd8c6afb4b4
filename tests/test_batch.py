"""Batches that never lose a task or pay twice: submit_many, as_completed, events, the journal,
resume, settling ambiguous creates, and a crash test with real processes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from contextlib import closing
from pathlib import Path

import pytest
from support import client_for

from cometrunway import (
    AmbiguousSubmitError,
    BatchSubmitError,
    Client,
    ClientStateError,
    InvalidRequestError,
    TaskStatus,
    TextToVideo,
)
from cometrunway.events import (
    AmbiguousSubmit,
    BatchTally,
    Event,
    StatusChanged,
    SubmitRejected,
    Submitted,
    TaskFinished,
)
from cometrunway.journal import EntryState
from cometrunway.testing import FakeCometAPI, Fault, Lifecycle

ROOT = Path(__file__).resolve().parents[1]


def prompts(n: int, tag: str = "p") -> list[TextToVideo]:
    return [TextToVideo(f"{tag} {i}") for i in range(n)]


async def test_partial_failure_of_300_keeps_every_created_id(tmp_path: Path) -> None:
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(0, 1)) as fake:
        refuse = Fault.response(400, {"code": "invalid_request", "message": "no", "data": None})
        fake.lifecycle_for = lambda body: None
        requests = prompts(300)
        async with client_for(fake, journal=tmp_path / "run.sqlite") as client:
            fake.inject("submit", refuse, times=30)
            fake.inject("submit", Fault.server_error(500, after_create=True), times=20)
            with pytest.raises(BatchSubmitError) as info:
                await client.submit_many(requests, max_concurrency=16)
            error = info.value
            created = [h for h in error.handles if h is not None]
            for handle in created:
                assert (await handle).status is TaskStatus.SUCCEEDED
            ambiguous = await client.ambiguous()
    assert len(error.handles) == 300
    assert len(created) == 250
    assert len(error.exceptions) == 50
    kinds = defaultdict(int)
    for exc in error.exceptions:
        assert error.handles[exc.index] is None  # type: ignore[attr-defined]
        kinds[type(exc)] += 1
    assert kinds == {InvalidRequestError: 30, AmbiguousSubmitError: 20}
    # Every task the server made is either handed back or listed as ambiguous.
    assert fake.created_count() == 270
    handed_back = {h.task_id for h in created}
    assert handed_back <= set(fake.tasks)
    assert len(ambiguous) == 20
    assert len(set(fake.tasks) - handed_back) == 20


async def test_cancelling_mid_batch_leaves_created_tasks_tracked_and_journaled(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1000, 0)) as fake:
        fake.inject("submit", Fault.delay(0.02), times=1000)
        async with client_for(fake, journal=tmp_path / "run.sqlite") as client:
            batch = asyncio.ensure_future(client.submit_many(prompts(200), max_concurrency=8))
            async with asyncio.timeout(30):
                while fake.created_count() < 20:
                    await asyncio.sleep(0.005)
            batch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await batch
            await asyncio.sleep(0.1)  # let shielded creates already sent come back
            created = list(fake.tasks)
            assert 20 <= len(created) < 200
            journal = client.journal
            assert journal is not None
            for task_id in created:
                assert client.wake(task_id), task_id  # True: the client follows it
                entry = await journal.get_by_task(task_id)
                assert entry is not None
                assert entry.state is EntryState.SUBMITTED


async def test_resubmitting_a_journaled_request_does_not_pay_twice(tmp_path: Path) -> None:
    journal = tmp_path / "run.sqlite"
    events: list[Event] = []
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 1)) as fake:
        async with client_for(fake, journal=journal, on_event=events.append) as client:
            first = await client.submit(TextToVideo("a cat"))
            again = await client.submit(TextToVideo("a cat"))
            assert again is first
            # Concurrent submits of one request: one create.
            twins = await asyncio.gather(*(client.submit(TextToVideo("a dog")) for _ in range(5)))
            assert len({h.task_id for h in twins}) == 1
            await first
        async with client_for(fake, journal=journal, on_event=events.append) as client:
            third = await client.submit(TextToVideo("a cat"))
            assert third.task_id == first.task_id
            assert (await third).status is TaskStatus.SUCCEEDED
            on_purpose = await client.submit(TextToVideo("a cat"), key="a cat, second take")
            assert on_purpose.task_id != first.task_id
    assert fake.created_count() == 3
    reused = [e for e in events if isinstance(e, Submitted) and e.reused]
    assert len(reused) >= 2


async def test_journal_key_names_the_row_submit_files(tmp_path: Path) -> None:
    request = TextToVideo("a heron", seconds=10)
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 1)) as fake:
        async with client_for(fake, journal=tmp_path / "run.sqlite") as client:
            handle = await client.submit(request)
            named = await client.submit(TextToVideo("a heron"), key="take 2")
            assert client.journal is not None
            rows = {entry.key: entry.task_id for entry in await client.journal.entries()}
    assert rows == {Client.journal_key(request): handle.task_id, "take 2": named.task_id}
    # The callback URL carries a per-client secret, so it is not part of the key.
    other = TextToVideo("a heron", seconds=10, callback_url="https://hooks.example/x")
    assert Client.journal_key(other) == Client.journal_key(request)
    assert Client.journal_key(request, "mine") == "mine"
    assert Client.journal_key(TextToVideo("a heron", seconds=5)) != Client.journal_key(request)
    with pytest.raises(TypeError, match="request model"):
        Client.journal_key({"prompt": "a heron"})  # type: ignore[arg-type]


async def test_events_come_in_order_per_task(tmp_path: Path) -> None:
    events: list[Event] = []
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 3)) as fake:
        fake.lifecycle_for = {"bad": Lifecycle.by_polls(1, 1).failing("no", "SAFETY.INPUT.TEXT")}
        requests = [*prompts(10), TextToVideo("bad")]
        async with client_for(fake, on_event=events.append) as client:
            reader_seen: list[Event] = []

            async def read() -> None:
                async for event in client.events():
                    reader_seen.append(event)

            reader = asyncio.ensure_future(read())
            await asyncio.sleep(0)
            handles = await client.submit_many(requests)
            async for _ in client.as_completed(handles):
                pass
        await asyncio.wait_for(reader, 5)
    assert reader_seen == events
    per_task: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        per_task[getattr(event, "task_id", "")].append(event)
    assert len(per_task) == 11
    order = {TaskStatus.PENDING: 0, TaskStatus.RUNNING: 1}
    for task_events in per_task.values():
        assert isinstance(task_events[0], Submitted)
        assert isinstance(task_events[-1], TaskFinished)
        middle = [e for e in task_events[1:-1] if isinstance(e, StatusChanged)]
        assert len(middle) == len(task_events) - 2
        ranks = [order[e.status] for e in middle]
        assert ranks == sorted(ranks)
    finished = [e for e in events if isinstance(e, TaskFinished)]
    assert sum(not e.succeeded for e in finished) == 1


async def test_batch_tally_counts_and_eta() -> None:
    now = [0.0]
    tally = BatchTally(total=4, clock=lambda: now[0])
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 1)) as fake:
        fake.inject("submit", Fault.response(400, {"code": "bad", "message": "no"}))
        async with client_for(fake, on_event=tally.add) as client:
            with pytest.raises(BatchSubmitError) as info:
                await client.submit_many(prompts(4), max_concurrency=1)
            assert tally.eta() is None
            assert tally.rejected == 1
            assert tally.submitted == 3
            now[0] = 3.0
            submitted = [h for h in info.value.handles if h is not None]
            assert len(submitted) == 3
            async for _ in client.as_completed(submitted):
                pass
    assert (tally.succeeded, tally.queued, tally.running) == (3, 0, 0)
    assert tally.settled == 4
    assert tally.eta() == 0.0


async def test_ambiguous_create_is_listed_refused_then_settled(tmp_path: Path) -> None:
    events: list[Event] = []
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(0, 1)) as fake:
        async with client_for(fake, journal=tmp_path / "j.sqlite", on_event=events.append) as c:
            fake.inject("submit", Fault.server_error(524, after_create=True))
            with pytest.raises(AmbiguousSubmitError) as info:
                await c.submit(TextToVideo("maybe"))
            key = info.value.key
            assert key is not None
            [row] = await c.ambiguous()
            assert row.key == key
            with pytest.raises(AmbiguousSubmitError, match="settle"):
                await c.submit(TextToVideo("maybe"))
            assert fake.created_count() == 1
            [found] = fake.tasks  # the user looks it up and attaches it
            handle = await c.settle(key, task_id=found)
            assert handle is not None
            assert (await handle).status is TaskStatus.SUCCEEDED
            assert await c.ambiguous() == []
            # Another ambiguous one, settled by paying again on purpose.
            fake.inject("submit", Fault.drop(after_create=True))
            with pytest.raises(AmbiguousSubmitError) as info:
                await c.submit(TextToVideo("again"))
            assert await c.settle(info.value.key or "", resubmit=True) is None
            await (await c.submit(TextToVideo("again")))
            with pytest.raises(ValueError, match="exactly one"):
                await c.settle(key)
    assert fake.created_count() == 3
    assert sum(isinstance(e, AmbiguousSubmit) for e in events) == 2
    assert not any(isinstance(e, SubmitRejected) for e in events)


async def test_resume_follows_unfinished_tasks_without_new_creates(tmp_path: Path) -> None:
    journal = tmp_path / "run.sqlite"
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(3, 3)) as fake:
        async with client_for(fake, journal=journal) as client:
            handles = await client.submit_many(prompts(12))
        for handle in handles:
            with pytest.raises(ClientStateError):
                await handle
        async with client_for(fake, journal=journal) as client:
            resumed = await client.resume()
            assert {h.task_id for h in resumed} == {h.task_id for h in handles}
            for handle in resumed:
                assert (await handle).status is TaskStatus.SUCCEEDED
            assert await client.resume() == []
    assert fake.created_count() == 12
    with pytest.raises(ClientStateError, match="journal"):
        async with client_for(fake) as client:
            await client.resume()


# ---------------------------------------------------------------- real processes, SIGKILL


def _fake_tasks(url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{url}/_fake/tasks", timeout=10) as answer:
        return list(json.load(answer)["tasks"])


def _journal_rows(path: Path) -> int:
    try:
        # closing(): a connection's own ``with`` commits but does not close (3.13 warns).
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
            return int(
                conn.execute("SELECT count(*) FROM entries WHERE task_id IS NOT NULL").fetchone()[0]
            )
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_and_never_pays_twice(tmp_path: Path) -> None:
    count = 500
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "cometrunway.testing", "--port", "0", "--running-for", "0.3"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        journal = tmp_path / "crash.sqlite"
        worker = [
            sys.executable,
            str(ROOT / "tests" / "crash_worker.py"),
            str(journal),
            url,
            str(count),
        ]
        rng = random.Random(20261124)
        kills = 0
        for _ in range(4):
            before = len(_fake_tasks(url))
            if before >= count:
                break
            target = before + rng.randint(5, max(6, (count - before) // 3))
            child = subprocess.Popen(
                worker, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and child.poll() is None:
                if len(_fake_tasks(url)) >= target:
                    break
                time.sleep(0.01)
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                kills += 1
            child.communicate(timeout=30)
        assert kills >= 2
        print(f"kills={kills}")

        # The final run: every prompt created, every task followed to the end.
        final = subprocess.run(worker, env=env, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        tasks = _fake_tasks(url)
        prompts_seen = [t["prompt"] for t in tasks]
        assert len(prompts_seen) == len(set(prompts_seen)), "a prompt was created twice"
        with closing(sqlite3.connect(journal)) as conn:
            rows = conn.execute("SELECT key, state, task_id, outputs, body FROM entries").fetchall()
        by_task = {row[2]: row for row in rows if row[2]}
        ambiguous_rows = [row for row in rows if row[1] in ("sending", "ambiguous")]
        ambiguous_prompts = {json.loads(row[4])["prompt"] for row in ambiguous_rows}
        journaled_prompts = {json.loads(row[4])["prompt"] for row in by_task.values()}
        # Every prompt has a task id in the journal, or is listed as an ambiguous create.
        assert journaled_prompts | ambiguous_prompts == {f"crash prompt {i}" for i in range(count)}
        assert not journaled_prompts & ambiguous_prompts
        # A task the journal has no id for is one of the listed ambiguous creates.
        lost = [t for t in tasks if t["task_id"] not in by_task]
        assert {t["prompt"] for t in lost} <= ambiguous_prompts
        assert len(tasks) == len(by_task) + len(lost)
        assert json.loads(final.stdout.strip().splitlines()[-1])["ambiguous"] == len(ambiguous_rows)
        print(
            f"created={len(tasks)} ambiguous={len(ambiguous_rows)} unknown-to-journal={len(lost)}"
        )
        for row in by_task.values():
            assert row[1] == "done", row
            assert json.loads(row[3]), row  # outputs recorded
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=10)
