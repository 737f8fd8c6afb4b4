"""``python -m cometrunway.testing``: run a ``FakeCometAPI`` in its own process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence

from ._fake import FakeCometAPI
from ._values import Lifecycle


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cometrunway.testing",
        description="Serve a fake CometAPI (Runway routes) until SIGINT/SIGTERM; "
        "prints its base URL on the first line.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--api-key", default=None, help="accept only this key")
    parser.add_argument("--create-envelope", choices=("A1", "A2", "A3"), default="A2")
    parser.add_argument("--feed-envelope", choices=("F1", "F2", "F3"), default="F1")
    parser.add_argument("--tasks-envelope", choices=("T1", "T2", "lowercase"), default="T1")
    parser.add_argument(
        "--allow-cancel", action="store_true", help="answer DELETE like Runway (default: 405)"
    )
    parser.add_argument(
        "--no-cost-fields", action="store_true", help="leave out estimatedCost/cost (§8.2)"
    )
    parser.add_argument("--queued-for", type=float, default=0.0, help="seconds queued")
    parser.add_argument("--running-for", type=float, default=0.0, help="seconds running")
    parser.add_argument("--queued-polls", type=int, default=0, help="polls answered queued")
    parser.add_argument("--running-polls", type=int, default=0, help="polls answered running")
    parser.add_argument("--not-found-polls", type=int, default=0, help="task_not_exist polls")
    parser.add_argument(
        "--output-size",
        type=int,
        default=None,
        help="bytes per output (default: real tiny MP4/PNG/MP3 files)",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added before each API answer"
    )
    parser.add_argument(
        "--remote-callbacks", action="store_true", help="also post callbacks to other hosts"
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    lifecycle = Lifecycle(
        queued_for=args.queued_for,
        running_for=args.running_for,
        queued_polls=args.queued_polls,
        running_polls=args.running_polls,
        not_found_polls=args.not_found_polls,
    )
    fake = FakeCometAPI(
        api_key=args.api_key,
        lifecycle=lifecycle,
        create_envelope=args.create_envelope,
        feed_envelope=args.feed_envelope,
        tasks_envelope=args.tasks_envelope,
        allow_cancel=args.allow_cancel,
        cost_fields=not args.no_cost_fields,
        output_size=args.output_size,
        latency=args.latency,
        callbacks_loopback_only=not args.remote_callbacks,
        host=args.host,
        port=args.port,
    )
    async with fake:
        print(fake.url, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run a fake CometAPI in this process until SIGINT or SIGTERM; returns the exit code."""
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0
