"""The commands. Each reads and checks its input first (nothing is sent if it is bad),
opens a client, runs its work under the Ctrl-C guard, writes what happened, and returns
its exit code.

Filesystem set-up (paths, folders) happens in plain functions before the client opens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import AuthenticationError, EndpointError, TaskNotFound, TransportError
from ..journal import POSTGRES_SCHEMES, EntryState, JournalEntry
from ..journal._pg_schema import redact
from ..models import PollRoute
from ._audio import audio_fields
from ._cancel import cmd_cancel
from ._common import CliError, ExitCode, emit_json, note, say, task_json
from ._credits import credits_line, credits_summary, task_credits
from ._display import make_display
from ._inputs import InputError, Item, make_item, read_batch
from ._jobs import (
    FINAL,
    Job,
    Row,
    Run,
    jobs_from_items,
    outcome,
    plural,
    prepare_dir,
    records_of,
    summarize,
    write_results,
)
from ._reading import is_stdin
from ._report import cmd_report, report_beside_outputs
from ._session import Interrupt, Session, classify, connect, demo_lifecycle, preflight
from ._settle import cmd_settle, refuse_key_conflicts

__all__ = ["COMMANDS"]


def _command(args: argparse.Namespace, *words: str) -> str:
    """A command line to paste, carrying the options it needs from this one."""
    parts = ["cometrunway", *words]
    for flag, value in (("--base-url", args.base_url), ("--api-key-file", args.api_key_file)):
        if value:
            parts += [flag, value]
    if getattr(args, "poll_interval", None):
        parts += ["--poll-interval", f"{args.poll_interval:g}"]
    return shlex.join(parts)


def _entry_text(entry: JournalEntry) -> str:
    if entry.label:
        return entry.label
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        body = json.loads(entry.body)
        prompt = body.get("prompt") or body.get("promptText")
        if isinstance(prompt, str):
            return prompt[:60]
    return entry.request_type or entry.key


def report_ambiguous(
    entries: Sequence[JournalEntry], journal: str, args: argparse.Namespace
) -> None:
    """Each ambiguous row, and the two ways to settle it."""
    if not entries:
        return
    note(
        f"{plural(len(entries), 'request')} may have been created without the task id being "
        "recorded (ambiguous); settle each one:"
    )
    for entry in entries:
        settle = _command(args, "settle", "--journal", journal, entry.key)
        error = f" ({entry.error})" if entry.error else ""
        note(f"  {entry.key}  {entry.request_type}  {_entry_text(entry)}{error}")
        note(f"    found the task in your CometAPI task list?  {settle} --task-id TASK_ID")
        note(f"    sure it was not created (pays again)?      {settle} --resubmit")
        if args.json:
            emit_json(
                {
                    "event": "ambiguous_entry",
                    "key": entry.key,
                    "type": entry.request_type,
                    "label": entry.label,
                    "error": entry.error,
                    "settle_with_task_id": f"{settle} --task-id TASK_ID",
                    "settle_resubmit": f"{settle} --resubmit",
                }
            )


# ---------------------------------------------------------------- paths


def user_path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def is_journal_url(value: str) -> bool:
    """A ``postgresql://`` (or ``postgres://``) journal, not a file path."""
    return value.partition("://")[0].lower() in POSTGRES_SCHEMES


def existing_journal(value: str) -> str:
    """A journal that must exist already (a new empty one would hide a wrong path); a
    ``postgresql://`` URL is passed on as is (the server says whether it exists)."""
    if is_journal_url(value):
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise CliError(
            f"no journal at {path}: give the file a batch wrote "
            "(by default <input>.journal.sqlite, next to the input)",
            ExitCode.USAGE,
        )
    return str(path)


# ---------------------------------------------------------------- batch


def _journal_for(args: argparse.Namespace, source: Path, temp: str | None) -> str:
    if args.journal:
        if is_journal_url(args.journal):
            return str(args.journal)
        return str(Path(args.journal).expanduser())
    if temp is not None:
        # The embedded fake forgets its tasks when it stops: a journal next to the input
        # would make the next demo run follow ids nobody knows.
        return str(Path(temp) / "demo.journal.sqlite")
    if is_stdin(source):
        raise CliError(
            "requests read from standard input (-) have no file to keep the journal beside: "
            "add --journal PATH (running again with it never pays twice)",
            ExitCode.USAGE,
        )
    return str(source.with_name(source.name + ".journal.sqlite"))


_CREATES_HINT = "interrupting: recording creates in flight (Ctrl-C again to quit at once)"


async def cmd_batch(args: argparse.Namespace, interrupt: Interrupt) -> int:
    interrupt.hint = _CREATES_HINT
    source = Path(args.file)
    defaults = {
        name: getattr(args, name)
        for name in ("model", "ratio", "style", "seconds")
        if getattr(args, name) is not None
    }
    items = read_batch(source, wanted=args.format, defaults=defaults)
    jobs, notes = jobs_from_items(items)
    if args.dry_run:
        return _dry_run(args, items)
    results = user_path(args.out)
    download_dir = prepare_dir(args.download)
    with contextlib.ExitStack() as stack:
        temp = None
        if args.fake and not args.journal:
            temp = stack.enter_context(tempfile.TemporaryDirectory(prefix="cometrunway-demo-"))
        journal = _journal_for(args, source, temp)
        shown_journal = "(temporary)" if temp else redact(journal)
        display = make_display(
            json_mode=args.json,
            plain=args.plain,
            total=len(jobs),
            title=f"batch {source} · {plural(len(jobs), 'request')} · journal {shown_journal}"
            + (" · --fake" if args.fake else ""),
        )
        for line in notes:
            note(line)
        run = Run(display, download_dir=download_dir, concurrency=args.concurrency)
        run.register(jobs)
        started = time.monotonic()
        interrupted, began = False, False
        ambiguous: list[JournalEntry] = []
        session: Session | None = None
        try:
            async with connect(args, journal=journal, on_event=run.on_event) as session:
                _, interrupted = await interrupt.guard(preflight(session))
                await refuse_key_conflicts(session.client.journal, jobs, journal)
                if not interrupted:
                    began = True
                    display.start()
                    try:
                        _, interrupted = await interrupt.guard(
                            run.execute(session.client, submit=jobs)
                        )
                    finally:
                        display.stop()
                    if not interrupted:
                        ambiguous = await session.client.ambiguous()
            # The client has closed: creates that were in flight are journaled by now.
        finally:
            if began and results is not None:
                write_results(results, records_of(jobs))
        assert session is not None
        if interrupted:
            return _interrupted_batch(args, jobs, journal=journal, source=source, fake=session.fake)
        if run.fatal is not None:
            raise classify(run.fatal, session.base_url)
        summary = summarize(
            jobs,
            started=started,
            download_dir=download_dir,
            results=results,
            journal=None if temp else journal,
            files=run.files,
        )
        code = outcome(jobs, ambiguous=len(ambiguous))
        summary["exit_code"] = int(code)
        display.finish(records_of(jobs), summary)
        report_ambiguous(ambiguous, journal, args)
        if download_dir is not None:
            await report_beside_outputs(journal, download_dir, json_mode=args.json)
        return code


def _dry_run(args: argparse.Namespace, items: Sequence[Item]) -> int:
    for item in items:
        if args.json:
            emit_json(
                {
                    "event": "request",
                    "line": item.line,
                    "type": type(item.request).__name__,
                    "label": item.label,
                    "key": item.journal_key,
                }
            )
        else:
            say(f"line {item.line}: {type(item.request).__name__}  {item.label}")
    if not args.json:
        note(f"{args.file}: {plural(len(items), 'request')} OK (dry run: nothing was sent)")
    return ExitCode.OK


def _interrupted_batch(
    args: argparse.Namespace, jobs: Sequence[Job], *, journal: str, source: Path, fake: bool
) -> int:
    running = [job for job in jobs if job.task_id is not None and job.status not in FINAL]
    unsent = [job for job in jobs if job.status == "NOT_SUBMITTED"]
    resume = _command(
        args,
        "resume",
        "--journal",
        journal,
        *(["--download", args.download] if args.download else []),
        *(["--out", args.out] if args.out else []),
    )
    rerun = _command(
        args,
        "batch",
        str(source),
        "--journal",
        journal,
        *(["--download", args.download] if args.download else []),
        *(["--out", args.out] if args.out else []),
    )
    if fake:
        note(
            f"interrupted with {plural(len(running), 'task')} still running in the embedded "
            "--fake server, which is gone now; run the demo again to watch it finish"
        )
    else:
        note(f"interrupted: {plural(len(running), 'task')} still running; resume with: {resume}")
        if unsent:
            note(
                f"{plural(len(unsent), 'request')} not sent yet; send them with: {rerun} "
                "(requests already created are not paid again)"
            )
    if args.json:
        emit_json(
            {
                "event": "interrupted",
                "running": len(running),
                "not_sent": len(unsent),
                "journal": journal,
                "resume": resume,
            }
        )
    return ExitCode.INTERRUPTED


# ---------------------------------------------------------------- resume


def job_from_entry(entry: JournalEntry) -> Job:
    states = {
        EntryState.QUEUED: "NOT_SUBMITTED",
        EntryState.SENDING: "AMBIGUOUS",
        EntryState.AMBIGUOUS: "AMBIGUOUS",
        EntryState.REJECTED: "REJECTED",
    }
    status = states.get(entry.state) or entry.status or "PENDING"
    fields = None
    if entry.body:
        with contextlib.suppress(ValueError):
            fields = json.loads(entry.body)
    label = _entry_text(entry)
    row = Row(
        fields=fields,
        key=entry.key,
        label=label,
        request_type=entry.request_type or None,
        task_id=entry.task_id,
        status=status,
        progress=entry.progress,
        outputs=list(entry.outputs),
        error=entry.error,
        error_code=entry.error_code,
    )
    return Job(label=label, rows=[row], key=entry.key)


async def cmd_resume(args: argparse.Namespace, interrupt: Interrupt) -> int:
    journal = existing_journal(args.journal)
    results = user_path(args.out)
    download_dir = prepare_dir(args.download)
    display = make_display(json_mode=args.json, plain=args.plain, total=0, title="")
    run = Run(display, download_dir=download_dir)
    started = time.monotonic()
    jobs: list[Job] = []
    ambiguous: list[JournalEntry] = []
    unsent = 0
    interrupted = False
    session: Session | None = None
    try:
        async with connect(args, journal=journal, on_event=run.on_event) as session:
            client = session.client
            _, interrupted = await interrupt.guard(preflight(session))
            if not interrupted:
                assert client.journal is not None
                handles = {handle.task_id: handle for handle in await client.resume()}
                ambiguous = await client.ambiguous()
                follow: list[Job] = []
                for entry in await client.journal.entries():
                    job = job_from_entry(entry)
                    jobs.append(job)
                    route: PollRoute = "tasks" if entry.poll_route == "tasks" else "feed"
                    if entry.task_id in handles:
                        job.handle = handles[entry.task_id]
                    elif download_dir is not None and entry.task_id and entry.status == "SUCCEEDED":
                        # Finished before, maybe never downloaded: one poll gives fresh URLs.
                        job.handle = client.track(entry.task_id, route=route)
                    if job.handle is not None:
                        follow.append(job)
                        display.track(job.handle.task_id, job.label)
                    unsent += entry.state is EntryState.QUEUED
                display.tally.total = len(follow)
                display.title = (
                    f"resume {journal} · following {plural(len(follow), 'task')}"
                    f" of {plural(len(jobs), 'journal row')}"
                )
                if follow:
                    display.start()
                    try:
                        _, interrupted = await interrupt.guard(run.execute(client, follow=follow))
                    finally:
                        display.stop()
                elif not args.json:
                    note(f"nothing to follow: every task in {journal} has finished")
    finally:
        if jobs and results is not None:
            write_results(results, records_of(jobs))
    assert session is not None
    if interrupted:
        running = sum(job.task_id is not None and job.status not in FINAL for job in jobs)
        resume = _command(
            args,
            "resume",
            "--journal",
            journal,
            *(["--download", args.download] if args.download else []),
            *(["--out", args.out] if args.out else []),
        )
        note(f"interrupted: {plural(running, 'task')} still running; resume with: {resume}")
        return ExitCode.INTERRUPTED
    if run.fatal is not None:
        raise classify(run.fatal, session.base_url)
    summary = summarize(
        jobs,
        started=started,
        download_dir=download_dir,
        results=results,
        journal=journal,
        files=run.files,
    )
    code = outcome(jobs, ambiguous=len(ambiguous))
    summary["exit_code"] = int(code)
    display.finish(records_of(jobs), summary)
    if unsent:
        note(
            f"{plural(unsent, 'request')} in the journal {'was' if unsent == 1 else 'were'} "
            "never sent: re-run the batch "
            f"command with --journal {shlex.quote(journal)} to send them"
        )
    report_ambiguous(ambiguous, journal, args)
    return code


# ---------------------------------------------------------------- one task


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


# ---------------------------------------------------------------- fake server


async def cmd_fake_server(args: argparse.Namespace, interrupt: Interrupt) -> int:
    from ..testing import FakeCometAPI  # only here and in --fake mode

    interrupt.hint = "stopping the fake server"
    fake = FakeCometAPI(lifecycle_for=demo_lifecycle(args.speed), host=args.host, port=args.port)
    try:
        await fake.start()
    except OSError as exc:
        raise CliError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror}", ExitCode.CONFIG
        ) from None
    try:
        if args.json:
            emit_json({"event": "listening", "url": fake.url})
        else:
            say(fake.url)
        note(
            "fake CometAPI serving (Ctrl-C to stop); point the client and the CLI at it:\n"
            f"  export COMETAPI_BASE_URL={fake.url}\n"
            "  export COMETAPI_KEY=any-key   # the fake accepts any key"
        )
        await interrupt.requested.wait()
    finally:
        await fake.close()
    return ExitCode.OK


Command = Callable[[argparse.Namespace, Interrupt], Awaitable[int]]

COMMANDS: dict[str, Command] = {
    "generate": cmd_generate,
    "batch": cmd_batch,
    "status": cmd_status,
    "wait": cmd_wait,
    "download": cmd_download,
    "cancel": cmd_cancel,
    "resume": cmd_resume,
    "settle": cmd_settle,
    "fake-server": cmd_fake_server,
    "report": cmd_report,
}
