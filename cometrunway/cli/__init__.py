"""The ``cometrunway`` command: generate videos, run batches, follow, resume and download.

Built on argparse from the standard library, not click: the command adds no dependency to
the package. rich (the ``cli`` extra, ``pip install 'cometrunway[cli]'``) draws the live
progress view; without it every command still works, with plain lines.

Commands (global options go before or after the command)::

    cometrunway generate (PROMPT | --speech TEXT [--voice V] |
                          --sound-effect TEXT [--duration S] [--loop])
                         [--image URL [--end-image URL] [--image-as-end-frame]]
                         [--model M] [--ratio W:H] [--style S] [--seconds {5,10}]
                         [--motion-x N --motion-y N --motion-z N --motion-r N
                          --motion-bg-x-pan N --motion-bg-y-pan N] [--callback-url URL]
                         [--wait] [--download DIR] [--journal PATH]
    cometrunway batch FILE [--format {auto,text,jsonl,csv}] [--concurrency N]
                      [--journal PATH] [--out results.jsonl] [--download DIR] [--dry-run]
                      [--model M] [--ratio W:H] [--style S] [--seconds {5,10}]
    cometrunway status TASK_ID [--route {feed,tasks}]
    cometrunway wait TASK_ID [--route {feed,tasks}] [--download DIR]
    cometrunway download TASK_ID DIR [--route {feed,tasks}]
    cometrunway cancel TASK_ID [--wait]
    cometrunway resume --journal PATH [--download DIR] [--out results.jsonl]
    cometrunway settle --journal PATH KEY (--task-id TASK_ID | --resubmit)
    cometrunway settle --journal PATH (--from FILE | --all --resubmit)
    cometrunway fake-server [--host H] [--port N] [--speed X]
    cometrunway report JOURNAL [-o report.html] [--downloads DIR]

    global: --fake [--fake-speed X] | --base-url URL, --api-key-file FILE,
            --poll-interval SECONDS, --json, --plain, -q/--quiet, -v/--verbose

``batch`` checks every line of FILE before sending anything (see ``_inputs`` for the three
file shapes), files each request in a journal (``<FILE>.journal.sqlite`` by default) before
its create is sent, and never pays twice: running the same command again follows the tasks
already created instead of creating them again (and downloads nothing already saved).
``--fake`` runs everything against an in-process fake of CometAPI, with no key and no
network::

    printf 'a red fox\\na calm lake\\n' | cometrunway batch - --fake --download out/

Exit codes (``--help`` shows the same table)::

    0    every task succeeded (and every download, with --download)
    1    some tasks failed, were refused, lost or never sent, or a download failed
    2    usage or bad input (nothing was sent)
    3    authentication or configuration: API key, base URL, journal file
    4    some creates are ambiguous (may have been created): settle them
    130  interrupted (Ctrl-C); the journal is intact, `resume` follows what was running
  143  stopped by SIGTERM, handled like Ctrl-C
    143  stopped by SIGTERM, handled like Ctrl-C

When several apply, the first in this order wins: 130, 3, 2, 4, 1.

Environment: ``COMETAPI_KEY`` (the key; never printed), ``COMETAPI_BASE_URL`` (default
https://api.cometapi.com), ``COMETRUNWAY_LOG=debug|info|warning`` (log the ``cometrunway``
logger to stderr; ``-v`` is info, ``-vv`` debug). Human output goes to stdout, diagnostics
to stderr; with ``--json`` stdout carries only JSON lines (events, results, a summary).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from ._common import CliError, ExitCode, configure_logging, note
from ._parser import build_parser

__all__ = ["build_parser", "main"]


def _unwrap(exc: BaseException) -> BaseException:
    # A failure inside a task group arrives wrapped; the user needs the failure itself.
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def _run(args: argparse.Namespace) -> int:
    from ._commands import COMMANDS
    from ._session import Interrupt

    interrupt = Interrupt()
    stop_listening = interrupt.install()
    try:
        code = await COMMANDS[args.command](args, interrupt)
    finally:
        stop_listening()
    # A SIGTERM is handled like Ctrl-C but reported as the signal it was.
    return interrupt.exit_code if code == ExitCode.INTERRUPTED else code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the table in the module docstring)."""
    from ._session import StartupInterrupt, install_startup_handlers

    parser = build_parser()
    args = parser.parse_args(argv)
    restore_logging = configure_logging(args.verbose)
    from ._display import set_quiet

    set_quiet(args.quiet)
    restore_signals = install_startup_handlers()
    try:
        return asyncio.run(_run(args))
    except StartupInterrupt as stop:
        note("interrupted before anything was sent")
        return stop.code
    except KeyboardInterrupt:
        note("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): stop quietly, and keep Python from
        # complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.FAILED
    except Exception as exc:
        from ._session import classify

        error = _unwrap(exc)
        if args.verbose and not isinstance(error, CliError):
            import logging

            logging.getLogger("cometrunway.cli").exception("traceback", exc_info=error)
        failure = error if isinstance(error, CliError) else classify(error)
        note(f"error: {failure.message}")
        return failure.code
    finally:
        restore_signals()
        restore_logging()
