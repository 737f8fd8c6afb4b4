"""``cometrunway settle``: settle ambiguous creates, one by key or many at once.

One row: ``KEY --task-id TASK_ID`` (the task it did make) or ``KEY --resubmit`` (it was not
made). Many rows: ``--from FILE`` attaches the ids a CSV or JSONL file lists (``key,task_id``
per line), and ``--all --resubmit`` lets the next batch run create every other ambiguous
row again. Each needs its explicit flag: nothing is resubmitted by default.

Also here: the batch command's check that no journal key already names another request,
made before anything is sent.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path

from ..client import request_key
from ..journal import (
    EntryState,
    Filing,
    Journal,
    JournalEntry,
    find_conflicts,
    opened_journal,
    settle_journal,
)
from ..protocol import build_submit
from ._common import CliError, ExitCode, emit_json, note, say
from ._jobs import Job
from ._session import Interrupt

__all__ = ["cmd_settle", "read_task_ids", "refuse_key_conflicts"]

_CSV_HEADER = ("key", "task_id")


# ---------------------------------------------------------------- key conflicts


async def refuse_key_conflicts(journal: Journal | None, jobs: Sequence[Job], where: str) -> None:
    """Bad input (exit 2) if a key the user chose is journaled for another request."""
    if journal is None:
        return
    filings = []
    for job in jobs:
        if job.user_key is None or job.request is None or job.key is None:
            continue  # a key made from the body cannot name another body
        http = build_submit(job.request, api_key="-")
        filings.append(Filing(job.key, type(job.request).__name__, http.path, request_key(http)[1]))
    conflicts = await find_conflicts(journal, filings, where=where)
    if conflicts:
        raise CliError("; ".join(str(c) for c in conflicts) + " (nothing was sent)", ExitCode.USAGE)


# ---------------------------------------------------------------- settle


def read_task_ids(source: str) -> dict[str, str]:
    """``{key: task_id}`` from a CSV (``key,task_id``, header optional) or JSONL file."""
    path = Path(source).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"--from {path}: cannot read it: {exc.strerror}", ExitCode.USAGE) from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    jsonl = path.suffix.lower() in (".jsonl", ".json") or (
        bool(lines) and lines[0][1].lstrip().startswith("{")
    )
    pairs: list[tuple[int, str, str]] = []
    for number, line in lines:
        where = f"--from {path} line {number}"
        if jsonl:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CliError(f"{where}: not JSON ({exc.msg})", ExitCode.USAGE) from None
            if not isinstance(record, dict):
                raise CliError(
                    f'{where}: give an object {{"key": ..., "task_id": ...}}', ExitCode.USAGE
                )
            key, task_id = record.get("key"), record.get("task_id")
        else:
            fields = next(csv.reader([line]))
            if tuple(f.strip().lower() for f in fields) == _CSV_HEADER:
                continue
            if len(fields) != len(_CSV_HEADER):
                raise CliError(
                    f"{where}: give two columns, key,task_id (found {len(fields)})",
                    ExitCode.USAGE,
                )
            key, task_id = fields
        for name, value in (("key", key), ("task_id", task_id)):
            if not isinstance(value, str) or not value.strip():
                raise CliError(f"{where}: {name} is missing or empty", ExitCode.USAGE)
        assert isinstance(key, str)
        assert isinstance(task_id, str)
        pairs.append((number, key.strip(), task_id.strip()))
    found: dict[str, str] = {}
    for number, key, task_id in pairs:
        if key in found and found[key] != task_id:
            raise CliError(
                f"--from {path} line {number}: key {key!r} is given two task ids "
                f"({found[key]} and {task_id}); keep the right one",
                ExitCode.USAGE,
            )
        found[key] = task_id
    if not found:
        raise CliError(f"--from {path}: no key,task_id lines in it", ExitCode.USAGE)
    return found


def _check_choice(args: argparse.Namespace) -> None:
    many = args.all or args.source is not None
    if args.key is not None and many:
        raise CliError("give a KEY, or --all / --from FILE, not both", ExitCode.USAGE)
    if args.key is None and not many:
        raise CliError(
            "say which rows: KEY (--task-id TASK_ID | --resubmit), --from FILE, or "
            "--all --resubmit",
            ExitCode.USAGE,
        )
    if args.key is not None and (args.task_id is None) == (not args.resubmit):
        raise CliError(f"settle {args.key}: give --task-id TASK_ID or --resubmit", ExitCode.USAGE)
    if args.key is None and args.task_id is not None:
        raise CliError("--task-id settles one row: give its KEY too", ExitCode.USAGE)
    if args.all and not args.resubmit:
        raise CliError(
            "--all needs --resubmit: it lets the next batch run create every ambiguous row "
            "again (and pay for it); nothing is resubmitted by default",
            ExitCode.USAGE,
        )
    if args.resubmit and args.source is not None and not args.all:
        raise CliError(
            "--from FILE --resubmit: add --all to resubmit the rows not in FILE", ExitCode.USAGE
        )


def _one_row(entries: Sequence[JournalEntry], key: str, journal: str) -> JournalEntry:
    matches = [e for e in entries if e.key == key] or [e for e in entries if e.key.startswith(key)]
    if not matches:
        raise CliError(f"no request with key {key!r} in {journal}", ExitCode.USAGE)
    if len(matches) > 1:
        raise CliError(
            f"{len(matches)} keys in {journal} start with {key!r}: give more of it", ExitCode.USAGE
        )
    entry = matches[0]
    if entry.state not in (EntryState.AMBIGUOUS, EntryState.SENDING):
        raise CliError(
            f"{entry.key} is {entry.state.value}, not ambiguous: nothing to settle", ExitCode.USAGE
        )
    return entry


async def cmd_settle(args: argparse.Namespace, interrupt: Interrupt) -> int:
    from ._cmd_common import _command, existing_journal

    _check_choice(args)
    journal = existing_journal(args.journal)
    task_ids = read_task_ids(args.source) if args.source else {}
    resume = _command(args, "resume", "--journal", journal)
    async with opened_journal(journal) as store:
        if args.key is not None:
            entry = _one_row(await store.entries(), args.key, journal)
            if args.task_id:
                task_ids = {entry.key: args.task_id}
            else:
                await store.release(entry.key)
                if args.json:
                    emit_json({"event": "settled", "key": entry.key, "task_id": None})
                else:
                    say(
                        f"settled {entry.key}: the next batch run with this journal creates "
                        "it again (and pays for it)"
                    )
                return ExitCode.OK
        try:
            report = await settle_journal(store, task_ids=task_ids, resubmit=args.resubmit)
        except ValueError as exc:
            raise CliError(str(exc), ExitCode.USAGE) from None
    for key, task_id, _ in report.attached:
        if args.json:
            emit_json({"event": "settled", "key": key, "task_id": task_id})
        else:
            say(f"settled {key}: it is task {task_id}")
    for key in report.released:
        if args.json:
            emit_json({"event": "settled", "key": key, "task_id": None})
        else:
            say(f"settled {key}: the next batch run creates it again (and pays for it)")
    for key, reason in report.failed:
        note(f"not settled {key}: {reason}")
    if report.attached and not args.json:
        note(f"follow the attached tasks with: {resume}")
    if report.left and not args.json:
        note(
            f"{len(report.left)} ambiguous row(s) left as they were (no task id given for "
            "them; add --all --resubmit to create them again)"
        )
    return ExitCode.FAILED if report.failed else ExitCode.OK
