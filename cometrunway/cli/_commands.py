"""The commands. Each reads and checks its input first (nothing is sent if it is bad),
opens a client, runs its work under the Ctrl-C guard, writes what happened, and returns
its exit code.

Filesystem set-up (paths, folders) happens in plain functions before the client opens.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from ._batch import cmd_batch, cmd_resume
from ._cancel import cmd_cancel
from ._cmd_common import _command as _command
from ._cmd_common import existing_journal as existing_journal
from ._common import CliError, ExitCode, emit_json, note, say
from ._report import cmd_report
from ._session import Interrupt, demo_lifecycle
from ._settle import cmd_settle
from ._single import cmd_download, cmd_generate, cmd_status, cmd_wait

__all__ = ["COMMANDS"]

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
