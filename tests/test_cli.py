"""The ``cometrunway`` command, run as a real process against FakeCometAPI.

Most tests start ``python -m cometrunway`` (what the console script runs) against a fake in
its own process (``python -m cometrunway.testing``) and count on the fake's side, through
``GET /_fake/tasks``, what was created. Input parsing is also tested in-process, where it is
fast. Nothing here leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cometrunway import Client, PollPolicy, TextToVideo
from cometrunway.cli._common import CliError
from cometrunway.cli._inputs import make_item, read_batch
from cometrunway.cli._jobs import jobs_from_items
from cometrunway.journal import SQLiteJournal
from cometrunway.testing import FakeCometAPI

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
KEY = "sk-cli-test-0123456789"
NO_KEY_MESSAGE = "error: no API key: set COMETAPI_KEY or pass --api-key-file FILE (or try --fake)"


# ---------------------------------------------------------------- helpers


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any real CometAPI settings (never reach the network)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COMETAPI_KEY", "COMETAPI_BASE_URL", "COMETRUNWAY_LOG")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cometrunway", *args],
        env=env if env is not None else clean_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cometrunway", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class FakeProcess:
    """``python -m cometrunway.testing`` in its own process."""

    def __init__(self, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cometrunway.testing", "--port", "0", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), self.url

    def tasks(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/_fake/tasks", timeout=5) as answer:
            rows: list[dict[str, Any]] = json.load(answer)["tasks"]
            return rows

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(**{"COMETAPI_KEY": KEY, "COMETAPI_BASE_URL": self.url, **extra})

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeProcess]:
    server = FakeProcess("--api-key", KEY, "--queued-for", "0.3", "--running-for", "0.8")
    yield server
    server.stop()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------- help and entry points


@pytest.mark.slow
def test_help_lists_commands_and_exit_codes() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("generate", "batch", "status", "wait", "download", "resume", "fake-server"):
        assert command in result.stdout
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "130"):
        assert f"\n  {code}" in result.stdout


@pytest.mark.slow
def test_console_script_runs() -> None:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    script = shutil.which("cometrunway", path=path)
    if script is None:
        pytest.skip("the cometrunway console script is not installed")
    result = subprocess.run(
        [script, "--help"], capture_output=True, text=True, env=clean_env(), timeout=30, check=False
    )
    assert result.returncode == 0
    assert "exit codes:" in result.stdout


@pytest.mark.slow
def test_the_cli_imports_neither_rich_nor_the_fake_until_needed() -> None:
    code = (
        "import sys, cometrunway.cli, cometrunway.cli._commands; "
        "print(sorted(m for m in ('rich', 'cometrunway.testing') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_usage_error_is_exit_2() -> None:
    result = cli("generate")
    assert result.returncode == 2
    assert "PROMPT" in result.stderr


# ---------------------------------------------------------------- the offline demo


@pytest.mark.slow
def test_fake_batch_of_the_example_prompts_downloads_everything(tmp_path: Path) -> None:
    prompts = EXAMPLES / "prompts.txt"
    journals_before = set(EXAMPLES.iterdir())
    result = cli(
        "batch", str(prompts), "--fake", "--fake-speed", "4", "--download", "out",
        "--out", "results.jsonl", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    count = len(read_batch(prompts))
    rows = json_lines((tmp_path / "results.jsonl").read_text())
    assert len(rows) == count
    for row in rows:
        assert row["status"] == "SUCCEEDED"
        assert row["task_id"]
        assert row["line"] >= 1
        assert row["files"]
        for name in row["files"]:
            assert (tmp_path / name).stat().st_size > 0
    outputs = [p for p in (tmp_path / "out").iterdir() if p.name != "report.html"]
    assert len(outputs) == sum(len(r["files"]) for r in rows)
    assert (tmp_path / "out" / "report.html").is_file()  # the batch's page, beside them
    # stdout is not a terminal here: plain lines, one per submitted and finished task
    assert result.stdout.count("submitted [") == count
    assert result.stdout.count("succeeded ") == count
    assert f"{count} succeeded" in result.stdout
    # --fake journals in a temporary folder: nothing is left beside the examples
    assert set(EXAMPLES.iterdir()) == journals_before


@pytest.mark.slow
def test_fake_failed_task_is_exit_1_and_reported(tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("a calm sea at dawn\na storm [fail]\n")
    result = cli(
        "batch", str(prompts), "--fake", "--fake-speed", "8", "--out", "r.jsonl", "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    events = json_lines(result.stdout)
    summary = events[-1]
    assert summary["event"] == "summary"
    assert (summary["succeeded"], summary["failed"], summary["exit_code"]) == (1, 1, 1)
    failed = [e for e in events if e["event"] == "result" and e["status"] == "FAILED"]
    assert failed[0]["error_code"] == "SAFETY.INPUT.TEXT"
    assert failed[0]["line"] == 2


# ---------------------------------------------------------------- against a separate fake


@pytest.mark.slow
def test_generate_wait_json(fake_server: FakeProcess) -> None:
    result = cli(
        "generate", "a paper boat on a rainy street", "--ratio", "9:16", "--wait", "--json",
        "--poll-interval", "0.2", "-vv", env=fake_server.env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)  # nothing but JSON on stdout
    kinds = [e["event"] for e in events]
    assert kinds[0] == "submitted"
    assert "finished" in kinds
    assert kinds[-2:] == ["result", "summary"]
    result_row = events[-2]
    assert result_row["status"] == "SUCCEEDED"
    assert result_row["outputs"][0].startswith(fake_server.url)
    assert result_row["input"] == {"prompt": "a paper boat on a rainy street", "ratio": "9:16"}
    assert events[-1]["exit_code"] == 0
    task = next(t for t in fake_server.tasks() if t["task_id"] == result_row["task_id"])
    assert task["prompt"] == "a paper boat on a rainy street"
    # -vv logged the requests to stderr, and the key is in neither stream
    assert "DEBUG" in result.stderr or "INFO" in result.stderr
    assert KEY not in result.stdout
    assert KEY not in result.stderr


@pytest.mark.slow
def test_status_wait_and_download(fake_server: FakeProcess, tmp_path: Path) -> None:
    env = fake_server.env()
    created = cli("generate", "a hummingbird at an orange flower", env=env)
    assert created.returncode == 0, created.stderr
    task_id = created.stdout.strip()  # without --wait, stdout is the task id alone
    assert task_id in {t["task_id"] for t in fake_server.tasks()}
    assert "cometrunway wait" in created.stderr

    status = cli("status", task_id, "--json", env=env)
    assert status.returncode == 0, status.stderr
    [snapshot] = json_lines(status.stdout)
    assert snapshot["event"] == "task"
    assert snapshot["task_id"] == task_id
    assert snapshot["status"] in ("PENDING", "RUNNING", "SUCCEEDED")

    waited = cli("wait", task_id, "--poll-interval", "0.2", env=env)
    assert waited.returncode == 0, waited.stderr
    assert f"SUCCEEDED  {task_id}" in waited.stdout

    downloaded = cli("download", task_id, str(tmp_path / "dl"), "--poll-interval", "0.2", env=env)
    assert downloaded.returncode == 0, downloaded.stderr
    files = sorted(p.name for p in (tmp_path / "dl").iterdir())
    assert f"{task_id}.mp4" in files
    assert (tmp_path / "dl" / f"{task_id}.mp4").stat().st_size > 0

    done = cli("status", task_id, env=env)
    assert done.returncode == 0
    assert "SUCCEEDED" in done.stdout
    assert f"/cdn/{task_id}/video.mp4" in done.stdout

    unknown = cli("status", "no-such-task", env=env)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: task no-such-task is unknown")


@pytest.mark.slow
def test_bad_input_line_is_exit_2_and_nothing_is_sent(
    fake_server: FakeProcess, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"prompt": "a fox in the snow"}\n'
        "\n"
        "# a comment\n"
        '{"prompt": "a boat", "seconds": 7}\n'
        '{"prompt": "good line after the bad one"}\n'
    )
    before = len(fake_server.tasks())
    result = cli("batch", str(prompts), "--out", str(tmp_path / "r.jsonl"), env=fake_server.env())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {prompts} line 4: ")
    assert "seconds must be one of 5, 10, got 7" in lines[0]
    assert "Traceback" not in result.stderr
    assert len(fake_server.tasks()) == before  # the good first line was not sent either
    assert not (tmp_path / "r.jsonl").exists()
    assert not (tmp_path / "prompts.jsonl.journal.sqlite").exists()


@pytest.mark.slow
def test_missing_key_is_exit_3_with_one_line(tmp_path: Path) -> None:
    env = clean_env(COMETAPI_BASE_URL=f"http://127.0.0.1:{closed_port()}")
    result = cli("generate", "a cat", env=env)
    assert result.returncode == 3
    assert result.stderr.strip() == NO_KEY_MESSAGE
    assert result.stdout == ""

    empty = tmp_path / "key.txt"
    empty.write_text("\n")
    result = cli("batch", str(EXAMPLES / "prompts.txt"), "--api-key-file", str(empty), env=env)
    assert result.returncode == 3
    assert "is empty" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_wrong_key_and_unreachable_base_url_are_exit_3(
    fake_server: FakeProcess, tmp_path: Path
) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\n")
    before = len(fake_server.tasks())
    wrong = "sk-wrong-key-777777"
    result = cli("batch", str(prompts), env=fake_server.env(COMETAPI_KEY=wrong))
    assert result.returncode == 3
    assert result.stderr.startswith("error: authentication failed")
    assert wrong not in result.stderr
    assert len(fake_server.tasks()) == before

    url = f"http://127.0.0.1:{closed_port()}"
    result = cli("generate", "a cat", env=clean_env(COMETAPI_KEY=KEY, COMETAPI_BASE_URL=url))
    assert result.returncode == 3
    assert result.stderr.startswith(f"error: cannot reach {url}")
    assert len(result.stderr.strip().splitlines()) == 1

    result = cli("status", "x", env=fake_server.env(COMETAPI_BASE_URL=fake_server.url + "/v9"))
    assert result.returncode == 3
    assert "does not answer like CometAPI" in result.stderr


@pytest.mark.slow
def test_fake_server_command_serves_until_ctrl_c(tmp_path: Path) -> None:
    server = start_cli("fake-server", "--port", "0", "--speed", "10", env=clean_env(), cwd=tmp_path)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        env = clean_env(COMETAPI_KEY=KEY, COMETAPI_BASE_URL=url, COMETRUNWAY_LOG="info")
        result = cli("generate", "a kite over a beach", "--wait", "--poll-interval", "0.1", env=env)
        assert result.returncode == 0, result.stderr
        assert "INFO cometrunway: created task" in result.stderr  # COMETRUNWAY_LOG=info
        assert KEY not in result.stderr
        assert "\nSUCCEEDED  " in result.stdout
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=15)
    assert server.returncode == 0
    assert f"export COMETAPI_BASE_URL={url}" in err


# ---------------------------------------------------------------- Ctrl-C, resume, rerun


@pytest.mark.slow
def test_ctrl_c_then_resume_finishes_every_task_exactly_once(tmp_path: Path) -> None:
    fake = FakeProcess("--queued-for", "1.5", "--running-for", "2.5")
    try:
        prompts = tmp_path / "many.txt"
        wanted = [f"shot {i}: a lighthouse in a storm, angle {i}" for i in range(40)]
        prompts.write_text("\n".join(wanted) + "\n")
        journal = tmp_path / "many.txt.journal.sqlite"
        env = fake.env()
        batch = start_cli(
            "batch", str(prompts), "--out", "partial.jsonl", "--poll-interval", "0.3",
            env=env, cwd=tmp_path,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while len(fake.tasks()) < len(wanted):
            assert batch.poll() is None, batch.communicate()
            assert time.monotonic() < deadline, "the batch did not submit in time"
            time.sleep(0.05)
        batch.send_signal(signal.SIGINT)
        out, err = batch.communicate(timeout=30)
        assert batch.returncode == 130, err
        assert f"resume with: cometrunway resume --journal {journal}" in err
        assert "40 tasks still running" in err
        partial = json_lines((tmp_path / "partial.jsonl").read_text())
        assert len(partial) == 40
        assert all(row["task_id"] for row in partial)
        assert journal.is_file()

        resumed = cli(
            "resume", "--journal", str(journal), "--out", "final.jsonl", "--download", "out",
            "--poll-interval", "0.3", env=env, cwd=tmp_path,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        final = json_lines((tmp_path / "final.jsonl").read_text())
        assert Counter(row["status"] for row in final) == {"SUCCEEDED": 40}
        assert len(list((tmp_path / "out").glob("*.mp4"))) == 40

        tasks = fake.tasks()
        created = Counter(task["prompt"] for task in tasks)
        assert created == Counter(wanted)  # every prompt created exactly once
        assert all(task["done"] and task["outcome"] == "succeed" for task in tasks)

        # The same batch command again pays for nothing (the journal returns the tasks) and
        # downloads nothing already saved.
        def saved_outputs() -> dict[Path, int]:  # report.html is rewritten by each batch run
            out = (tmp_path / "out").iterdir()
            return {p: p.stat().st_mtime_ns for p in out if p.name != "report.html"}

        saved = saved_outputs()
        again = cli(
            "batch", str(prompts), "--download", "out", "--poll-interval", "0.3",
            env=env, cwd=tmp_path,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "40 already in the journal (not paid again)" in again.stdout
        assert len(fake.tasks()) == 40
        assert saved_outputs() == saved
    finally:
        fake.stop()


SLOW_CREATES = """
import asyncio, signal, sys
from cometrunway.testing import FakeCometAPI, Fault, Lifecycle

async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    async with FakeCometAPI(lifecycle=Lifecycle.by_time(0.3, 0.5)) as fake:
        fake.inject("submit", Fault.delay(1.5), times=int(sys.argv[1]))
        print(fake.url, flush=True)
        await stop.wait()

asyncio.run(main())
"""


@pytest.mark.slow
def test_ctrl_c_mid_create_records_the_creates_in_flight(tmp_path: Path) -> None:
    """Creates already sent when Ctrl-C lands are answered, journaled and reported; running
    the batch again creates only the rest."""
    script = tmp_path / "slow_creates.py"
    script.write_text(SLOW_CREATES)
    fake = subprocess.Popen(
        [sys.executable, str(script), "4"], stdout=subprocess.PIPE, text=True, env=clean_env()
    )
    try:
        assert fake.stdout is not None
        url = fake.stdout.readline().strip()

        def requests_seen() -> int:
            with urllib.request.urlopen(f"{url}/_fake/tasks", timeout=5) as answer:
                count: int = json.load(answer)["requests"]
                return count

        prompts = tmp_path / "p.txt"
        prompts.write_text("".join(f"slow create {i}\n" for i in range(10)))
        env = clean_env(COMETAPI_KEY=KEY, COMETAPI_BASE_URL=url)
        args = ("batch", str(prompts), "--concurrency", "4", "--out", "r.jsonl")
        batch = start_cli(*args, "--poll-interval", "0.2", env=env, cwd=tmp_path)
        deadline = time.monotonic() + 30
        while requests_seen() < 5:  # the preflight poll, then 4 creates held by the fake
            assert batch.poll() is None, batch.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        batch.send_signal(signal.SIGINT)
        _, err = batch.communicate(timeout=30)
        assert batch.returncode == 130, err
        assert "interrupted: 4 tasks still running" in err
        assert "6 requests not sent yet" in err
        rows = json_lines((tmp_path / "r.jsonl").read_text())
        assert [bool(row["task_id"]) for row in rows] == [True] * 4 + [False] * 6

        again = cli(*args, "--poll-interval", "0.2", env=env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert "4 already in the journal (not paid again)" in again.stdout
        with urllib.request.urlopen(f"{url}/_fake/tasks", timeout=5) as answer:
            tasks = json.load(answer)["tasks"]
        assert sorted(t["prompt"] for t in tasks) == sorted(f"slow create {i}" for i in range(10))
    finally:
        fake.send_signal(signal.SIGINT)
        fake.communicate(timeout=10)


@pytest.mark.slow
def test_ambiguous_rows_are_exit_4_until_settled(fake_server: FakeProcess, tmp_path: Path) -> None:
    journal = tmp_path / "run.journal.sqlite"

    async def make_ambiguous_row() -> str:
        async with SQLiteJournal(str(journal)) as store:
            entry, _ = await store.reserve(
                "sha256:feedc0ffee", request_type="TextToVideo", path="/runway/pro/generate",
                body='{"prompt": "a ghost ship"}', poll_route="feed", label="a ghost ship",
            )  # fmt: skip
            await store.mark_sending(entry.key)
            await store.mark_ambiguous(entry.key, "HTTP 524: timeout after sending")
            return entry.key

    key = asyncio.run(make_ambiguous_row())
    env = fake_server.env()
    result = cli("resume", "--journal", str(journal), env=env)
    assert result.returncode == 4, result.stderr
    assert key in result.stderr
    assert f"settle --journal {journal} {key} --task-id TASK_ID" in result.stderr

    settled = cli("settle", "--journal", str(journal), "sha256:feed", "--resubmit", env=env)
    assert settled.returncode == 0, settled.stderr
    assert f"settled {key}" in settled.stdout

    # Released: safe to send again, but resume cannot send it; a batch run does.
    result = cli("resume", "--journal", str(journal), env=env)
    assert result.returncode == 1, result.stderr
    assert "1 request in the journal was never sent" in result.stderr


# ---------------------------------------------------------------- input files, in-process


def test_example_files_parse() -> None:
    text = read_batch(EXAMPLES / "prompts.txt")
    assert len(text) >= 5
    assert {type(item.request).__name__ for item in text} == {"TextToVideo"}
    jsonl = read_batch(EXAMPLES / "prompts.jsonl")
    types = {type(item.request).__name__ for item in jsonl}
    assert {"TextToVideo", "ImageToVideo", "RunwayImageToVideo"} <= types
    zoom = next(item for item in jsonl if item.label == "lighthouse-zoom")
    assert zoom.request.motion_vector.z == 0.5  # type: ignore[union-attr]
    csv_items = read_batch(EXAMPLES / "prompts.csv")
    assert [item.line for item in csv_items] == [2, 3, 4, 5]
    fox = csv_items[1].request
    assert (fox.ratio, fox.seconds) == ("9:16", 10)  # type: ignore[union-attr]
    assert csv_items[2].request.motion_vector.z == 0.5  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("p.jsonl", '{"prompt": "a"}\n{"prompt": "b",}\n', "line 2: not valid JSON"),
        ("p.jsonl", '{"promt": "a"}\n', 'line 1: unknown field "promt" for TextToVideo'),
        ("p.jsonl", '{"prompt": "a", "video": "https://x/v.mp4"}\n', '"type": "VideoToVideo"'),
        ("p.jsonl", '{"type": "TxtToVideo", "prompt": "a"}\n', 'did you mean "TextToVideo"'),
        ("p.jsonl", '["a"]\n', "line 1: expected a JSON object"),
        ("p.jsonl", '{"seconds": 5}\n', 'line 1: TextToVideo needs "prompt"'),
        ("p.jsonl", '{"prompt": "a", "ratio": "16x9"}\n', "a colon, not an 'x'"),
        ("p.jsonl", '{"prompt": "a", "motion_vector": {"q": 1}}\n', 'unknown field "q" in'),
        ("p.csv", "prompt,seconds\na,five\n", "line 2: column 'seconds' must be a number"),
        ("p.csv", "prompt,ratio\na,16:9\nb,1:1,extra\n", "line 3: 3 cells"),
        ("p.txt", "# only a comment\n\n", "has no requests"),
    ],
)
def test_bad_lines_name_the_line_and_the_fix(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CliError) as caught:
        read_batch(path)
    assert caught.value.code == 2
    assert str(path) in caught.value.message
    assert expected in caught.value.message


def test_more_bad_lines_are_counted_on_the_one_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"x": 1}\n{"prompt": "fine"}\n{"y": 2}\n{"z": 3}\n')
    with pytest.raises(CliError) as caught:
        read_batch(path)
    assert "line 1:" in caught.value.message
    assert "(2 more bad lines after it)" in caught.value.message


def test_repeated_requests_share_one_job(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"prompt": "same"}\n{"prompt": "other"}\n{"prompt": "same"}\n'
        '{"prompt": "same", "key": "take-2"}\n'
    )
    jobs, notes = jobs_from_items(read_batch(path))
    assert [[row.line for row in job.rows] for job in jobs] == [[1, 3], [2], [4]]
    assert len(notes) == 1
    assert "lines 1, 3" in notes[0]


async def test_journal_key_matches_the_clients(tmp_path: Path) -> None:
    """Rows learn late task ids by journal key: the CLI must compute the client's key."""
    item = make_item(3, {"prompt": "a red fox", "ratio": "9:16", "motion_vector": {"z": 1}})
    assert isinstance(item.request, TextToVideo)
    poll = PollPolicy(initial_delay=0.01, interval=0.01, min_interval=0.01, max_interval=0.05)
    async with FakeCometAPI() as fake:
        journal = str(tmp_path / "j.sqlite")
        async with Client("sk-x", base_url=fake.url, journal=journal, poll=poll) as client:
            handle = await client.submit(item.request, label=item.label)
            await handle
            assert client.journal is not None
            entry = await client.journal.get_by_task(handle.task_id)
    assert entry is not None
    assert entry.key == item.journal_key


@pytest.mark.slow
def test_sigterm_mid_batch_behaves_like_ctrl_c_and_exits_143(tmp_path: Path) -> None:
    fake = FakeProcess("--queued-for", "5", "--running-for", "5")
    try:
        prompts = tmp_path / "few.txt"
        prompts.write_text("".join(f"a harbour at dawn, take {i}\n" for i in range(5)))
        journal = tmp_path / "few.txt.journal.sqlite"
        batch = start_cli(
            "batch", str(prompts), "--out", "partial.jsonl", "--poll-interval", "0.3",
            env=fake.env(), cwd=tmp_path,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while len(fake.tasks()) < 5:
            assert batch.poll() is None, batch.communicate()
            assert time.monotonic() < deadline, "the batch did not submit in time"
            time.sleep(0.05)
        batch.send_signal(signal.SIGTERM)
        _, err = batch.communicate(timeout=30)
        assert batch.returncode == 143, err
        assert f"resume with: cometrunway resume --journal {journal}" in err
        assert "Traceback" not in err
        partial = json_lines((tmp_path / "partial.jsonl").read_text())
        assert len(partial) == 5
        assert all(row["task_id"] for row in partial)
    finally:
        fake.stop()


STARTUP_SIGNALS = """
import signal
from cometrunway.cli._session import StartupInterrupt, install_startup_handlers

install_startup_handlers()
try:
    signal.raise_signal(signal.SIGINT)
except StartupInterrupt:
    print("first: start-up ends", flush=True)
    signal.raise_signal(signal.SIGINT)  # the second, while unwinding: quits at once
print("not reached", flush=True)
"""


def test_two_ctrl_c_at_start_up_exit_130_without_a_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", STARTUP_SIGNALS],
        capture_output=True, text=True, timeout=30, env=clean_env(), check=False,
    )  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout == "first: start-up ends\n"
    assert "quitting at once" in proc.stderr
    assert "Traceback" not in proc.stderr
