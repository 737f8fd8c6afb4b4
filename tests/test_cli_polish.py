"""The CLI's rough edges, smoothed: resume's view, waiting on finished tasks, hints that
work, 80 columns, an early ETA, ``-`` for stdin, ``--quiet``."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from test_cli import KEY, FakeProcess, cli, json_lines

from cometrunway import Task, TaskStatus
from cometrunway.cli import main
from cometrunway.cli._display import Display, LiveDisplay, _Running, set_quiet
from cometrunway.cli._eta import progress_eta
from cometrunway.events import StatusChanged, TaskFinished

TASK_ID = "3f2b8c1e-9a7d-4e21-b8f0-5c6d7e8f9a0b"
LONG_PROMPT = "a very long prompt about a red fox running through the snow at dusk, " * 2


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """main() in this process points the library's logger at this test's captured stderr:
    put it back, or later tests log into a closed stream."""
    logger = logging.getLogger("cometrunway")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]
    set_quiet(False)


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COMETAPI_KEY", "COMETAPI_BASE_URL", "COMETRUNWAY_LOG"):
        monkeypatch.delenv(name, raising=False)


def feed_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))


# ---------------------------------------------------------------- resume's live view


def test_a_task_that_ended_before_it_was_tracked_shows_no_queued_row() -> None:
    display = Display(2, "resume")
    done = Task(TASK_ID, TaskStatus.SUCCEEDED)
    # resume's handles poll from the start: a task can end before the command tracks it.
    display.on_event(TaskFinished(TASK_ID, TaskStatus.SUCCEEDED, done))
    display.track(TASK_ID, "line 1")
    display.track("still-going", "line 2")
    assert list(display.running) == ["still-going"]


# ---------------------------------------------------------------- 80 columns


def finished_table(width: int) -> list[str]:
    display = LiveDisplay(3, "batch")
    out = io.StringIO()
    display.console = Console(file=out, width=width, force_terminal=False)
    records = [
        {"status": status, "task_id": TASK_ID, "label": f"prompts.txt line {n}: {LONG_PROMPT}"}
        for n, status in enumerate(("SUCCEEDED", "FAILED", "AMBIGUOUS"), 1)
    ]
    display.finish(records, {"exit_code": 1, "tasks": 3})
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_result_table_keeps_its_status_column(width: int) -> None:
    lines = finished_table(width)
    assert lines[0].split()[:2] == ["status", "task"]
    assert [line.split()[0] for line in lines[1:4]] == ["SUCCEEDED", "FAILED", "AMBIGUOUS"]
    assert all(len(line) <= width for line in lines)


def test_at_80_columns_the_whole_task_id_shows() -> None:
    assert all(TASK_ID in line for line in finished_table(80)[1:4])


# ---------------------------------------------------------------- ETA before any task ends


def running(seen: float, progress: float | None, at: float, rate: float | None) -> _Running:
    return _Running(TaskStatus.RUNNING, seen, progress, at, rate)


def test_eta_from_progress_before_anything_finished() -> None:
    display = Display(1, "batch")
    assert display.eta(now=10.0) is None  # nothing known at all: "?"
    # 50% after 10 s, no rate yet: 10 s more at the same pace.
    display.running[TASK_ID] = running(seen=0.0, progress=0.5, at=10.0, rate=None)
    assert display.eta(now=10.0) == pytest.approx(10.0)
    # A measured rate wins, and time since the reading counts as progress made.
    display.running[TASK_ID] = running(seen=0.0, progress=0.5, at=10.0, rate=0.1)
    assert display.eta(now=12.0) == pytest.approx(3.0)


def test_eta_counts_the_tasks_not_started_yet() -> None:
    in_flight = [running(0.0, 0.5, 10.0, None), running(0.0, 0.25, 10.0, None)]
    # The slowest in flight needs 30 s more; two more tasks wait, one wave of two tasks
    # that take (20 + 40) / 2 = 30 s each.
    assert progress_eta(in_flight, left=4, now=10.0) == pytest.approx(30.0 + 30.0)
    assert progress_eta(in_flight, left=0, now=10.0) == 0.0
    assert progress_eta([running(0.0, None, 0.0, None)], left=1, now=5.0) is None


def test_status_changes_feed_the_estimate() -> None:
    display = Display(1, "batch")
    task = Task(TASK_ID, TaskStatus.RUNNING, progress=0.4)
    display.on_event(StatusChanged(TASK_ID, TaskStatus.RUNNING, 0.4, task))
    eta = display.eta()
    assert eta is not None and eta >= 0.0


# ---------------------------------------------------------------- stdin, --quiet, --help


def test_dash_reads_the_batch_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_key: None
) -> None:
    feed_stdin(monkeypatch, b'{"prompt": "a red fox"}\n{"prompt": "a calm lake"}\n')
    assert main(["batch", "-", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "a red fox" in out and "a calm lake" in out


def test_stdin_has_the_same_caps_as_files(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_key: None
) -> None:
    monkeypatch.setattr("cometrunway.cli._inputs.MAX_BATCH_FILE_BYTES", 64)
    feed_stdin(monkeypatch, b"a red fox\n" * 100)
    assert main(["batch", "-", "--dry-run"]) == 2
    assert "batch file (standard input) is larger than 64 bytes" in capsys.readouterr().err
    feed_stdin(monkeypatch, b"a red fox\n\0\0\0")
    assert main(["batch", "-", "--dry-run"]) == 2
    assert "(standard input) line 2 holds a NUL byte" in capsys.readouterr().err


def test_stdin_batches_need_a_journal_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_key: None
) -> None:
    feed_stdin(monkeypatch, b"a red fox\n")
    assert main(["batch", "-"]) == 2
    assert "add --journal PATH" in capsys.readouterr().err


def test_the_help_hint_runs_from_an_installed_wheel(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_key: None,
    tmp_path: Path,
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    assert "examples/" not in help_text  # the wheel ships no examples folder
    [hint] = [line.strip() for line in help_text.splitlines() if "printf" in line]
    assert hint.startswith("printf 'a red fox\\na calm lake\\n' | cometrunway batch - --fake")
    # What the hint pipes in, run as it says (in this folder, faster).
    feed_stdin(monkeypatch, b"a red fox\na calm lake\n")
    out = tmp_path / "out"
    code = main(["batch", "-", "--fake", "--fake-speed", "50", "--download", str(out)])
    assert code == 0, capsys.readouterr().err
    assert len(list(out.glob("*.mp4"))) == 2


def test_quiet_prints_nothing_when_all_went_well(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_key: None
) -> None:
    feed_stdin(monkeypatch, b"a red fox\na calm lake\n")
    assert main(["batch", "-", "--fake", "--fake-speed", "50", "--quiet"]) == 0
    quiet = capsys.readouterr()
    assert quiet.out == ""
    feed_stdin(monkeypatch, b"a red fox\na calm lake\n")
    assert main(["batch", "-", "--fake", "--fake-speed", "50"]) == 0
    assert "2 succeeded" in capsys.readouterr().out  # without --quiet: the summary


def test_generate_with_the_embedded_fake_suggests_what_works(
    capsys: pytest.CaptureFixture[str], no_key: None
) -> None:
    assert main(["generate", "a red fox", "--fake"]) == 0
    err = capsys.readouterr().err
    assert "cometrunway wait" not in err  # the fake is gone once this command ends
    assert "--wait" in err
    assert "fake-server" in err


# ---------------------------------------------------------------- main() inside a program


def test_main_gives_the_library_logger_back_as_it_found_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, no_key: None
) -> None:
    logger = logging.getLogger("cometrunway")
    before = (list(logger.handlers), logger.level, logger.propagate)
    # -vv: the command line lowers the level, adds its stderr handler, stops propagation.
    assert main(["report", str(tmp_path / "nothing.sqlite"), "-vv"]) == 2
    assert (list(logger.handlers), logger.level, logger.propagate) == before
    # The calling program's own handlers see the library's records again.
    with caplog.at_level(logging.WARNING, logger="cometrunway.webhooks"):
        logging.getLogger("cometrunway.webhooks").warning("after the command")
    assert [record.getMessage() for record in caplog.records] == ["after the command"]


# ---------------------------------------------------------------- wait on a finished task


@pytest.fixture(scope="module")
def slow_polling_fake() -> Iterator[FakeProcess]:
    server = FakeProcess("--api-key", KEY, "--queued-for", "0.1", "--running-for", "0.2")
    yield server
    server.stop()


#: A poll interval (and so an initial delay) no test would sit through.
LONG_INTERVAL = "120"


@pytest.mark.slow
def test_wait_and_download_of_a_finished_task_poll_at_once(
    slow_polling_fake: FakeProcess, tmp_path: Path
) -> None:
    env = slow_polling_fake.env()
    made = cli("generate", "a red fox", "--wait", "--json", "--poll-interval", "0.2", env=env)
    assert made.returncode == 0, made.stderr
    [result] = [row for row in json_lines(made.stdout) if row["event"] == "result"]
    task_id = result["task_id"]
    for command in (["wait", task_id], ["download", task_id, str(tmp_path / "dl")]):
        began = time.monotonic()
        # Without the immediate poll this would sit out the 120 s initial delay.
        done = cli(*command, "--poll-interval", LONG_INTERVAL, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - began < 60
    assert (tmp_path / "dl" / f"{task_id}.mp4").is_file()
