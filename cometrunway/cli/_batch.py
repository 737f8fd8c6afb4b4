"""The batch commands: ``batch`` sends a file of requests, ``resume`` picks a journal
back up."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ..journal import EntryState, JournalEntry
from ..journal._pg_schema import redact
from ..models import PollRoute
from ._cmd_common import (
    _CREATES_HINT,
    _command,
    _entry_text,
    existing_journal,
    is_journal_url,
    report_ambiguous,
    user_path,
)
from ._common import CliError, ExitCode, emit_json, note, say
from ._display import make_display
from ._inputs import Item, read_batch
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
from ._report import report_beside_outputs
from ._session import Interrupt, Session, classify, connect, preflight
from ._settle import refuse_key_conflicts


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
