"""The CLI with ``--journal postgresql://…``: batch, rerun, resume and settle on one database,
against a fake in its own process (counted on its side through ``GET /_fake/tasks``)."""

from __future__ import annotations

import json
import os
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

KEY = "sk-cli-postgres-test"
PROMPTS = ("a fox in the snow", "a heron at dawn", "a lighthouse in fog")
CLI_TIMEOUT_SECONDS = 90


@pytest.fixture
def fake_url() -> Iterator[str]:
    fake = subprocess.Popen(
        [sys.executable, "-m", "cometrunway.testing", "--port", "0", "--api-key", KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    try:
        yield fake.stdout.readline().strip()
    finally:
        fake.send_signal(signal.SIGTERM)
        fake.wait(timeout=CLI_TIMEOUT_SECONDS)
        fake.stdout.close()


def cli(*args: str, base_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
    env.update(COMETAPI_KEY=KEY, COMETAPI_BASE_URL=base_url, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "cometrunway", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def created(base_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base_url}/_fake/tasks") as answer:
        tasks: list[dict[str, Any]] = json.load(answer)["tasks"]
    return tasks


def with_password(url: str, password: str) -> str:
    """The same database URL with a password (trust authentication ignores it)."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


async def test_batch_rerun_resume_and_settle_on_a_postgres_journal(
    postgres_url: str, fake_url: str, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    journal = with_password(postgres_url, "s3cret-pw")

    first = cli("batch", str(prompts), "--journal", journal, base_url=fake_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "s3cret-pw" not in first.stdout + first.stderr
    assert len(created(fake_url)) == len(PROMPTS)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".sqlite")]  # no file journal

    again = cli("batch", str(prompts), "--journal", journal, base_url=fake_url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(created(fake_url)) == len(PROMPTS)  # the journal knew them all: not paid twice

    async with PostgresJournal(postgres_url) as store:
        assert {e.state for e in await store.entries()} == {EntryState.DONE}
        entry, _ = await store.reserve_sending(
            "sha256:feedc0ffee",
            request_type="TextToVideo",
            path="/runway/pro/generate",
            body='{"prompt": "a ghost ship"}',
            poll_route="feed",
        )
        await store.mark_ambiguous(entry.key, "HTTP 524: timeout after sending")

    resumed = cli("resume", "--journal", postgres_url, base_url=fake_url, cwd=tmp_path)
    assert resumed.returncode == 4, resumed.stderr  # an ambiguous row needs a decision
    assert "sha256:feedc0ffee" in resumed.stderr

    settled = cli(
        "settle", "--journal", postgres_url, "sha256:feed", "--resubmit",
        base_url=fake_url, cwd=tmp_path,
    )  # fmt: skip
    assert settled.returncode == 0, settled.stderr
    async with PostgresJournal(postgres_url) as store:
        row = await store.get("sha256:feedc0ffee")
        assert row is not None and row.state is EntryState.QUEUED
