"""Durable before visible: a process killed right after ``submit()`` returned lost no id.

Each run is a separate process (``tests/crash_worker.py --kill-after-submit``) that submits
a seed-chosen number of prompts at once, prints the task ids of the first few ``submit()``
calls to return and SIGKILLs itself at once. The journal it leaves must hold every printed
id, and the fake server must have created each prompt once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = range(20)
# A generous bound for one short client process (start-up dominates).
RUN_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "cometrunway.testing", "--port", "0", "--running-for", "5"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()


def _created_prompts(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/_fake/tasks", timeout=10) as answer:
        return [str(task["prompt"]) for task in json.load(answer)["tasks"]]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_right_after_submit_keeps_every_returned_id(
    fake_url: str, tmp_path: Path, seed: int
) -> None:
    journal = tmp_path / "killed.sqlite"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "crash_worker.py"),
            "--kill-after-submit",
            str(seed),
            str(journal),
            fake_url,
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    printed = json.loads(run.stdout.strip().splitlines()[-1])
    returned = set(printed["returned"])
    assert returned
    with contextlib.closing(sqlite3.connect(journal)) as conn:
        rows = dict(conn.execute("SELECT task_id, state FROM entries WHERE task_id IS NOT NULL"))
    missing = returned - set(rows)
    assert not missing, f"seed {seed}: ids handed out but not in the journal: {missing}"
    assert {rows[task_id] for task_id in returned} <= {"submitted", "done"}
    ours = [p for p in _created_prompts(fake_url) if p.startswith(f"seed {seed} ")]
    assert len(ours) == len(set(ours)), "a prompt was created twice"
