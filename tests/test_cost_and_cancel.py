"""Cost and cancel end to end against FakeCometAPI (wire reference §8.2, §8.4–§8.6): credits
on tasks, events and the tally; every "not visible yet" shape within the grace; failure text
under ``error``; ``handle.cancel()`` / ``client.cancel()`` with cancel allowed, refused (405)
and impossible (feed tasks)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import KEY, client_for

from cometrunway import (
    CancelNotSupported,
    RunwaySoundEffect,
    RunwayTextToSpeech,
    TaskFailed,
    TaskStatus,
    TextToVideo,
)
from cometrunway.events import BatchTally, Event, Submitted, TaskFinished
from cometrunway.journal import SQLiteJournal
from cometrunway.testing import NOT_FOUND_SHAPES, FakeCometAPI, Lifecycle
from cometrunway.testing._envelopes import CREDITS_BY_ACTION

SPEECH_CREDITS = float(CREDITS_BY_ACTION["TEXT_TO_SPEECH"])
LONG = Lifecycle.by_polls(queued=1000, running=1000)  # runs until cancelled


# ---------------------------------------------------------------- cost (§8.2)


async def test_cost_reaches_the_task_events_and_tally() -> None:
    events: list[Event] = []
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 1)) as fake:
        async with client_for(fake, on_event=events.append) as client:
            handle = await client.submit(RunwayTextToSpeech("Hello there."))
            task = await handle
    assert (task.cost, task.estimated_cost) == (SPEECH_CREDITS, SPEECH_CREDITS)
    submitted = [e for e in events if isinstance(e, Submitted)]
    finished = [e for e in events if isinstance(e, TaskFinished)]
    assert submitted[0].estimated_cost == SPEECH_CREDITS
    assert finished[0].cost == SPEECH_CREDITS
    tally = BatchTally(total=1, clock=lambda: 0.0)
    for event in events:
        tally.add(event)
    assert (tally.credits_spent, tally.credits_estimated, tally.cost_unknown) == (
        SPEECH_CREDITS,
        SPEECH_CREDITS,
        0,
    )


async def test_without_cost_fields_every_figure_is_unknown() -> None:
    events: list[Event] = []
    async with FakeCometAPI(cost_fields=False) as fake:
        async with client_for(fake, on_event=events.append) as client:
            task = await (await client.submit(RunwaySoundEffect("A door slams.")))
    assert (task.cost, task.estimated_cost) == (None, None)
    tally = BatchTally(total=1, clock=lambda: 0.0)
    for event in events:
        tally.add(event)
    assert (tally.credits_spent, tally.credits_estimated, tally.cost_unknown) == (None, None, 1)


async def test_audio_tasks_have_outputs_but_no_video_url(fake: FakeCometAPI) -> None:
    async with client_for(fake) as client:
        task = await (await client.submit(RunwayTextToSpeech("Hello.")))
    assert task.video_url is None
    assert len(task.outputs) == 1 and task.outputs[0].endswith(".mp3")


# ---------------------------------------------------------------- not visible yet (§8.4)


@pytest.mark.parametrize("shape", sorted(NOT_FOUND_SHAPES))
async def test_every_not_found_shape_gets_the_grace_window(shape: Any) -> None:
    life = Lifecycle(not_found_polls=2)
    async with FakeCometAPI(lifecycle=life, not_found_shape=shape) as fake:
        async with client_for(fake) as client:
            task = await (await client.submit(RunwayTextToSpeech("Hi.")))
            polls = fake.request_count("poll")
    assert task.status is TaskStatus.SUCCEEDED
    assert polls >= 3  # two "not visible yet" answers, then the task


async def test_lowercase_words_and_failure_text_under_error() -> None:
    life = Lifecycle.by_polls(1, 1).failing("content moderation", "SAFETY.INPUT.TEXT")
    async with FakeCometAPI(lifecycle=life, tasks_envelope="lowercase") as fake:
        async with client_for(fake) as client:
            handle = await client.submit(RunwayTextToSpeech("Hi."))
            with pytest.raises(TaskFailed) as failed:
                await handle
    assert failed.value.task.status is TaskStatus.FAILED
    assert failed.value.task.error == "content moderation"
    assert failed.value.task.raw_status == "failed"


# ---------------------------------------------------------------- cancel (§8.6)


def deletes(fake: FakeCometAPI) -> list[Any]:
    return [r for r in fake.requests if r.method == "DELETE"]


async def test_handle_cancel_ends_the_task_cancelled() -> None:
    async with FakeCometAPI(lifecycle=LONG, allow_cancel=True) as fake:
        async with client_for(fake) as client:
            handle = await client.submit(RunwayTextToSpeech("Stop me."))
            await handle.cancel()
            with pytest.raises(TaskFailed) as failed:
                await handle
    assert failed.value.task.status is TaskStatus.CANCELLED
    (delete,) = deletes(fake)
    assert delete.path == f"/runwayml/v1/tasks/{handle.task_id}"
    assert delete.headers["Authorization"] == f"Bearer {KEY}"


async def test_client_cancel_by_id_for_a_task_followed_elsewhere() -> None:
    async with FakeCometAPI(lifecycle=LONG, allow_cancel=True) as fake:
        async with client_for(fake) as client:
            handle = await client.submit(RunwayTextToSpeech("Stop me."))
            await client.cancel(handle.task_id)
            with pytest.raises(TaskFailed):
                await handle
            assert fake.tasks[handle.task_id].outcome == "cancel"


async def test_a_405_says_not_supported_and_the_task_stays_followed() -> None:
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(2, 2)) as fake:  # default: 405
        async with client_for(fake) as client:
            handle = await client.submit(RunwayTextToSpeech("Keep going."))
            with pytest.raises(CancelNotSupported) as refused:
                await handle.cancel()
            task = await handle  # still followed: it ends as the server says
    assert "not supported by this server" in str(refused.value)
    assert refused.value.status == 405 and refused.value.task_id == handle.task_id
    assert task.status is TaskStatus.SUCCEEDED
    assert KEY not in str(refused.value)


async def test_feed_tasks_have_no_cancel_route_and_nothing_is_sent() -> None:
    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(1, 1), allow_cancel=True) as fake:
        async with client_for(fake) as client:
            handle = await client.submit(TextToVideo("a cat"))
            with pytest.raises(CancelNotSupported) as refused:
                await handle.cancel()
            await handle
    assert "no cancel route" in str(refused.value)
    assert refused.value.status is None
    assert deletes(fake) == []


async def test_cancel_of_a_finished_handle_sends_nothing() -> None:
    async with FakeCometAPI(allow_cancel=True) as fake:
        async with client_for(fake) as client:
            handle = await client.submit(RunwayTextToSpeech("Done already."))
            await handle
            await handle.cancel()
    assert deletes(fake) == []


class RecordingJournal(SQLiteJournal):
    """A journal that can record cancel requests (the hook the client looks for)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.cancels: list[str] = []

    async def record_cancel_request(self, task_id: str) -> None:
        self.cancels.append(task_id)


async def test_a_journal_that_can_record_the_cancel_does(tmp_path: Path) -> None:
    journal = RecordingJournal(tmp_path / "run.sqlite")
    async with FakeCometAPI(lifecycle=LONG, allow_cancel=True) as fake:
        async with client_for(fake, journal=journal) as client:
            handle = await client.submit(RunwayTextToSpeech("Stop me."))
            await handle.cancel()
            with pytest.raises(TaskFailed):
                await handle
    assert journal.cancels == [handle.task_id]


# ---------------------------------------------------------------- the command line


def parse(*argv: str) -> Any:
    from cometrunway.cli import build_parser

    return build_parser().parse_args(["generate", *argv])


@pytest.mark.parametrize(
    ("argv", "fields"),
    [
        (
            ("--speech", "Hello.", "--voice", "Leslie"),
            {"type": "RunwayTextToSpeech", "prompt_text": "Hello.", "voice": "Leslie"},
        ),
        (
            ("--sound-effect", "Rain.", "--duration", "2.5", "--loop", "--model", "m1"),
            {
                "type": "RunwaySoundEffect",
                "prompt_text": "Rain.",
                "duration": 2.5,
                "loop": True,
                "model": "m1",
            },
        ),
    ],
)
def test_generate_audio_flags_build_the_audio_requests(
    argv: tuple[str, ...], fields: dict[str, Any]
) -> None:
    from cometrunway.cli._audio import audio_fields
    from cometrunway.cli._inputs import make_item

    assert audio_fields(parse(*argv)) == fields
    request = make_item(None, fields).request
    assert isinstance(request, RunwayTextToSpeech | RunwaySoundEffect)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("a cat", "--speech", "Hello."), "not both"),
        (("--speech", "Hello.", "--ratio", "16:9"), "--ratio: only for a video"),
        (("--speech", "Hello.", "--loop"), "--loop is for --sound-effect"),
        (("--sound-effect", "Rain.", "--voice", "Maya"), "--voice is for --speech"),
        (("a cat", "--voice", "Maya"), "--voice needs --speech or --sound-effect"),
    ],
)
def test_generate_audio_flags_refuse_what_does_not_fit(argv: tuple[str, ...], message: str) -> None:
    from cometrunway.cli._audio import audio_fields
    from cometrunway.cli._common import CliError, ExitCode

    with pytest.raises(CliError) as refused:
        audio_fields(parse(*argv))
    assert message in refused.value.message
    assert refused.value.code == ExitCode.USAGE


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """``main()`` in-process installs a stderr handler on the ``cometrunway`` logger: put
    the logger back as it was, so later tests never log to this test's closed stderr."""
    logger = logging.getLogger("cometrunway")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.mark.usefixtures("cli_logging")
def test_generate_without_prompt_or_audio_is_a_usage_error() -> None:
    from cometrunway.cli import main

    assert main(["generate", "--fake"]) == 2


@pytest.mark.usefixtures("cli_logging")
def test_cancel_of_a_feed_task_is_a_usage_error_before_anything_is_sent() -> None:
    from cometrunway.cli import main

    assert main(["cancel", "task-1", "--route", "feed", "--fake"]) == 2


@pytest.mark.parametrize(
    ("type_name", "cls"),
    [("text_to_speech", RunwayTextToSpeech), ("sound_effect", RunwaySoundEffect)],
)
def test_batch_type_aliases_of_the_audio_routes(type_name: str, cls: type) -> None:
    from cometrunway.cli._inputs import make_item

    item = make_item(1, {"type": type_name, "prompt_text": "Hello."})
    assert isinstance(item.request, cls)


@pytest.mark.parametrize("type_name", ["text_to_speech", "sound_effect", "RunwayImageToVideo"])
def test_batch_lines_may_say_prompt_for_prompt_text(type_name: str) -> None:
    from cometrunway.cli._inputs import make_item

    fields: dict[str, Any] = {"type": type_name, "prompt": "Hello there."}
    if type_name == "RunwayImageToVideo":
        fields["prompt_image"] = "https://example.com/a.png"
    item = make_item(1, fields)
    assert item.request.prompt_text == "Hello there."


def test_both_prompt_and_prompt_text_on_one_line_is_refused() -> None:
    from cometrunway.cli._inputs import InputError, make_item

    with pytest.raises(InputError, match="given twice"):
        make_item(1, {"type": "text_to_speech", "prompt": "a", "prompt_text": "b"})


def test_batch_video_settings_leave_audio_lines_their_own_model() -> None:
    from cometrunway.cli._inputs import make_item

    defaults = {"model": "gen4_turbo", "ratio": "1280:720", "seconds": 10}
    speech = make_item(1, {"type": "text_to_speech", "prompt": "Hi."}, defaults=defaults)
    assert isinstance(speech.request, RunwayTextToSpeech)
    assert speech.request.model == RunwayTextToSpeech("x").model
    named = make_item(
        2, {"type": "sound_effect", "prompt": "Rain.", "model": "m2"}, defaults=defaults
    )
    assert named.request.model == "m2"
    video = make_item(3, {"prompt": "a fox"}, defaults=defaults)
    assert video.request.model == "gen4_turbo"


def test_credits_line_says_unknown_when_the_server_says_nothing() -> None:
    from cometrunway.cli._credits import credits_line

    assert credits_line({"credits_unknown": 2}) == "credits: unknown (the server did not say)"
    assert credits_line({"credits_spent": 4.0, "credits_estimated": 4.0, "credits_unknown": 1}) == (
        "credits: 4 spent (estimated 4); unknown for 1 task"
    )
    assert credits_line({"credits_unknown": 0}) is None


@pytest.mark.usefixtures("cli_logging")
def test_cancel_on_a_server_without_the_route_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    from cometrunway.cli import main

    assert main(["cancel", "task-1", "--fake"]) == 1  # the embedded fake answers 405
    assert "cancel is not supported by this server" in capsys.readouterr().err


def run_cli(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cometrunway", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cli_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COMETAPI_KEY", "COMETAPI_BASE_URL", "COMETRUNWAY_LOG")
    }
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


# A fake in its own process that cancels like Runway, with tasks queued for a minute.
FAKE_OPTIONS = ("--port", "0", "--allow-cancel", "--queued-for", "60")


@pytest.mark.slow
def test_generate_speech_then_cancel_and_wait_against_a_fake_process() -> None:
    fake = subprocess.Popen(
        [sys.executable, "-m", "cometrunway.testing", *FAKE_OPTIONS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert fake.stdout is not None
        url = fake.stdout.readline().strip()
        env = cli_env(COMETAPI_KEY=KEY, COMETAPI_BASE_URL=url)
        created = run_cli("generate", "--speech", "Hello.", env=env)
        assert created.returncode == 0, created.stderr
        task_id = created.stdout.strip()
        assert "--route tasks" in created.stderr  # the follow-up hint names the route
        cancelled = run_cli("cancel", task_id, "--wait", "--json", env=env)
        assert cancelled.returncode == 0, cancelled.stderr
        lines = [json.loads(line) for line in cancelled.stdout.splitlines()]
        assert lines[0] == {"event": "cancel_requested", "task_id": task_id}
        assert (lines[-1]["status"], lines[-1]["cost"]) == ("CANCELLED", 0)
    finally:
        fake.send_signal(signal.SIGINT)
        fake.communicate(timeout=10)


@pytest.mark.slow
def test_generate_speech_with_fake_reports_credits() -> None:
    result = run_cli("generate", "--speech", "Hello.", "--fake", "--wait", "--json", env=cli_env())
    assert result.returncode == 0, result.stderr
    summary = [json.loads(line) for line in result.stdout.splitlines()][-1]
    assert summary["event"] == "summary"
    assert (summary["credits_spent"], summary["credits_estimated"]) == (
        SPEECH_CREDITS,
        SPEECH_CREDITS,
    )
