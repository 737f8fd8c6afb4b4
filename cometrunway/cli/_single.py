"""The one-task commands: ``generate``, ``wait``, ``download`` and ``status``."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path
from typing import Any

from ..errors import AuthenticationError, EndpointError, TaskNotFound, TransportError
from ..models import PollRoute
from ._audio import audio_fields
from ._cmd_common import (
    _CREATES_HINT,
    _command,
)
from ._common import CliError, ExitCode, emit_json, note, say, task_json
from ._credits import credits_line, credits_summary, task_credits
from ._display import make_display
from ._inputs import InputError
from ._jobs import (
    Job,
    Row,
    Run,
    jobs_from_items,
    outcome,
    prepare_dir,
    records_of,
    summarize,
)
from ._request import make_item
from ._session import Interrupt, classify, connect, preflight


def _generate_fields(args: argparse.Namespace) -> dict[str, Any]:
    audio = audio_fields(args)
    if audio is not None:
        return audio
    if args.prompt is None:
        raise CliError(
            "generate needs PROMPT (or --speech TEXT, --sound-effect TEXT)", ExitCode.USAGE
        )
    fields: dict[str, Any] = {"prompt": args.prompt}
    if args.end_image and not args.image:
        raise CliError("--end-image needs --image (the first frame)", ExitCode.USAGE)
    if args.image_as_end_frame and not args.image:
        raise CliError("--image-as-end-frame needs --image", ExitCode.USAGE)
    options = {
        "image": args.image,
        "end_image": args.end_image,
        "image_as_end_frame": True if args.image_as_end_frame else None,
        "model": args.model,
        "ratio": args.ratio,
        "style": args.style,
        "seconds": args.seconds,
        "callback_url": args.callback_url,
    }
    fields.update((name, value) for name, value in options.items() if value is not None)
    motion = {
        name: getattr(args, f"motion_{name}")
        for name in ("x", "y", "z", "r", "bg_x_pan", "bg_y_pan")
        if getattr(args, f"motion_{name}") is not None
    }
    if motion:
        fields["motion_vector"] = motion
    return fields


def _single_report(args: argparse.Namespace, job: Job) -> None:
    """The end of one task, for humans: status, outputs, files, or why it failed."""
    if args.json:
        return
    row = job.rows[0]
    say(f"{row.status}  {row.task_id or '-'}")
    for url in row.outputs:
        say(f"  output  {url}")
    for path in row.files:
        say(f"  saved   {path}")
    if row.error:
        code = f" [{row.error_code}]" if row.error_code else ""
        note(f"  error   {row.error}{code}")
    if row.download_error:
        note(f"  download failed: {row.download_error}")
    credits = credits_line(credits_summary([job.handle]))
    if credits:
        say(f"  {credits}")


async def cmd_generate(args: argparse.Namespace, interrupt: Interrupt) -> int:
    interrupt.hint = _CREATES_HINT
    try:
        item = make_item(None, _generate_fields(args))
    except InputError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    wait = args.wait or args.download is not None
    download_dir = prepare_dir(args.download)
    jobs, _ = jobs_from_items([item])
    job = jobs[0]
    if args.journal is None:
        job.key = None  # no journal: the Submitted event carries no key
    display = make_display(
        json_mode=args.json, plain=args.plain, total=1, title=f"generate · {item.label}"
    )
    run = Run(display, download_dir=download_dir)
    run.register(jobs)
    started = time.monotonic()
    async with connect(args, journal=args.journal, on_event=run.on_event) as session:
        _, interrupted = await interrupt.guard(preflight(session))
        if not interrupted:
            if wait:
                display.start()
            try:
                _, interrupted = await interrupt.guard(
                    run.execute(session.client, submit=[job], wait=wait)
                )
            finally:
                display.stop()
    if interrupted:
        if job.task_id:
            follow = _command(args, "wait", job.task_id)
            note(f"interrupted: task {job.task_id} is still running; follow it with: {follow}")
        else:
            note("interrupted before the task was created")
        return ExitCode.INTERRUPTED
    if run.fatal is not None:
        raise classify(run.fatal, session.base_url)
    if job.status == "AMBIGUOUS":
        hint = (
            f"; settle it as `cometrunway resume --journal {shlex.quote(args.journal)}` shows"
            if args.journal
            else ": look for it in your CometAPI task list before asking again"
        )
        raise CliError(f"{job.rows[0].error}{hint}", ExitCode.AMBIGUOUS)
    if job.status == "REJECTED":
        raise CliError(f"the server refused the request: {job.rows[0].error}", ExitCode.FAILED)
    if not wait:
        if not args.json:
            # Official-format tasks are polled on the tasks route (wire §1.10).
            route = ["--route", "tasks"] if item.request.poll_route == "tasks" else []
            say(job.task_id or "")
            note(_follow_hint(args, job.task_id or "", *route))
        return ExitCode.OK
    return _finish_single(args, run, job, started, download_dir)


def _follow_hint(args: argparse.Namespace, task_id: str, *route: str) -> str:
    if args.fake:
        # The embedded fake stops with this command and forgets its tasks: no later
        # command can follow this id. Say what does work.
        return (
            "submitted to the embedded fake, which stops now and forgets the task: to see "
            "it finish, run generate with --wait (or --download DIR); to follow ids "
            "later, start `cometrunway fake-server` and pass its --base-url"
        )
    return (
        f"submitted; follow it with: {_command(args, 'wait', task_id, *route)}"
        f"  (one look: {_command(args, 'status', task_id, *route)})"
    )


def _finish_single(
    args: argparse.Namespace, run: Run, job: Job, started: float, download_dir: Path | None
) -> int:
    code = outcome([job])
    if args.json:
        summary = summarize(
            [job],
            started=started,
            download_dir=download_dir,
            results=None,
            journal=None,
            files=run.files,
        )
        summary["exit_code"] = int(code)
        run.display.finish(records_of([job]), summary)
    _single_report(args, job)
    return code


async def _follow_one(
    args: argparse.Namespace, interrupt: Interrupt, *, download_dir: Path | None, verb: str
) -> int:
    task_id = args.task_id.strip()
    if not task_id:
        raise CliError("the task id is empty", ExitCode.USAGE)
    _note_empty_fake(args)
    route: PollRoute = args.route
    display = make_display(
        json_mode=args.json, plain=args.plain, total=1, title=f"{verb} {task_id}"
    )
    run = Run(display, download_dir=download_dir)
    row = Row(task_id=task_id, label=task_id, status="PENDING")
    job = Job(label=task_id, rows=[row])
    started = time.monotonic()
    async with connect(args, journal=None, on_event=run.on_event) as session:
        seen, interrupted = await interrupt.guard(preflight(session, task_id=task_id, route=route))
        if not interrupted:
            job.handle = session.client.track(task_id, route=route)
            if seen is not None and seen.status.is_terminal:
                # Already finished: poll it now, not after the policy's initial delay.
                session.client.wake(task_id)
            display.track(task_id, task_id)
            display.start()
            try:
                _, interrupted = await interrupt.guard(run.execute(session.client, follow=[job]))
            finally:
                display.stop()
    if interrupted:
        again = [verb, task_id, *([str(download_dir)] if verb == "download" else [])]
        note(
            f"interrupted: task {task_id} is still running; follow it again with: "
            f"{_command(args, *again)}"
        )
        return ExitCode.INTERRUPTED
    if run.fatal is not None:
        raise classify(run.fatal, session.base_url)
    if job.status == "NOT_FOUND":
        raise CliError(
            f"task {task_id} is unknown at {session.base_url} (route {route}): check the id; "
            "tasks of /runwayml/v1 routes need --route tasks",
            ExitCode.FAILED,
        )
    return _finish_single(args, run, job, started, download_dir)


async def cmd_wait(args: argparse.Namespace, interrupt: Interrupt) -> int:
    return await _follow_one(args, interrupt, download_dir=prepare_dir(args.download), verb="wait")


async def cmd_download(args: argparse.Namespace, interrupt: Interrupt) -> int:
    return await _follow_one(args, interrupt, download_dir=prepare_dir(args.dir), verb="download")


def _note_empty_fake(args: argparse.Namespace) -> None:
    if args.fake:
        note(
            "note: --fake starts an empty fake that knows no task ids; to follow tasks of a "
            "fake, run `cometrunway fake-server` and point COMETAPI_BASE_URL at it"
        )


async def cmd_status(args: argparse.Namespace, interrupt: Interrupt) -> int:
    task_id = args.task_id.strip()
    _note_empty_fake(args)
    async with connect(args, journal=None, on_event=None) as session:
        try:
            task, interrupted = await interrupt.guard(
                session.client.fetch(task_id, route=args.route)
            )
        except TaskNotFound:
            raise CliError(
                f"task {task_id} is unknown at {session.base_url} (route {args.route}): check "
                "the id (a task created seconds ago may not be visible yet; tasks of "
                "/runwayml/v1 routes need --route tasks)",
                ExitCode.FAILED,
            ) from None
        except (AuthenticationError, EndpointError, TransportError) as exc:
            raise classify(exc, session.base_url) from None
    if interrupted or task is None:
        return ExitCode.INTERRUPTED
    if args.json:
        emit_json({"event": "task", **task_json(task)})
        return ExitCode.OK
    progress = f" {task.progress:.0%}" if task.progress is not None else ""
    raw = f" ({task.raw_status})" if task.raw_status and task.raw_status != task.status else ""
    say(f"task      {task.task_id}")
    say(f"status    {task.status.value}{raw}{progress}")
    for url in task.all_urls:
        say(f"output    {url}")
    if task.error:
        say(f"error     {task.error}" + (f" [{task.error_code}]" if task.error_code else ""))
    if task.cost is not None or task.estimated_cost is not None:
        say(f"credits   {task_credits(task)}")
    for name in ("created_at", "started_at", "finished_at"):
        value = getattr(task, name)
        if value is not None:
            say(f"{name.split('_')[0]:<9} {value.isoformat(timespec='seconds')}")
    return ExitCode.OK
