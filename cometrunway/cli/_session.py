"""Talking to CometAPI from the command line: Ctrl-C, key and base URL, the client (or the
embedded fake), and the one-line messages for errors that end a command.

Ctrl-C is handled here rather than by ``asyncio.run``: the first one cancels only the
command's work (submit workers, followers, downloads), never the client's own ``async
with`` block, so the client exits normally and its task group waits for creates already in
flight: each gets its task id or its ambiguous mark journaled. A second Ctrl-C quits at
once (the SQLite journal is safe against that; a create caught mid-send is then listed by
``resume`` as ambiguous).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ..client import DEFAULT_BASE_URL, Client
from ..errors import (
    AmbiguousSubmitError,
    AuthenticationError,
    CometRunwayError,
    EndpointError,
    JournalError,
    TaskNotFound,
    TransportError,
    UnjournaledTask,
)
from ..events import Event
from ..models import PollRoute, Task
from ..policies import PollPolicy
from ._common import CliError, ExitCode, add_secret, note
from ._reading import MAX_KEY_FILE_BYTES, decode_text, read_capped

__all__ = [
    "FAKE_KEY",
    "Interrupt",
    "Session",
    "StartupInterrupt",
    "api_key",
    "base_url",
    "classify",
    "connect",
    "demo_lifecycle",
    "install_startup_handlers",
    "preflight",
    "quit_now",
]

log = logging.getLogger("cometrunway.cli")

T = TypeVar("T")

FAKE_KEY = "fake-key"


# ---------------------------------------------------------------- Ctrl-C and SIGTERM


def quit_now(code: ExitCode) -> None:
    """The second Ctrl-C: leave at once, without a traceback (the SQLite journal is safe
    against that; a create caught mid-send is listed by ``resume`` as ambiguous)."""
    note(
        "aborted: quitting at once; the journal is intact (a create caught mid-send is "
        "listed by `cometrunway resume` as ambiguous)"
    )
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os._exit(code)


class StartupInterrupt(BaseException):
    """A stop signal that arrived before the command listens for one (start-up)."""

    def __init__(self, code: ExitCode) -> None:
        super().__init__(code)
        self.code = code


def install_startup_handlers() -> Callable[[], None]:
    """Until ``Interrupt.install`` takes over: the first SIGINT/SIGTERM ends start-up with
    ``StartupInterrupt`` (nothing has been sent yet), a second one quits at once. Without
    this a second Ctrl-C lands in the middle of unwinding and prints a traceback. Returns
    the function that puts the previous handlers back."""
    fired: list[ExitCode] = []

    def handler(signum: int, _frame: object) -> None:
        if fired:
            quit_now(fired[0])
        fired.append(_STOP_SIGNALS[signal.Signals(signum)])
        raise StartupInterrupt(fired[0])

    previous = {signum: signal.getsignal(signum) for signum in _STOP_SIGNALS}
    for signum in _STOP_SIGNALS:
        signal.signal(signum, handler)

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore


#: The signals that ask the CLI to stop, and the exit code each ends with (128 + number, as
#: a shell reports a process that a signal ended).
_STOP_SIGNALS: dict[signal.Signals, ExitCode] = {
    signal.SIGINT: ExitCode.INTERRUPTED,
    signal.SIGTERM: ExitCode.TERMINATED,
}


class Interrupt:
    """SIGINT or SIGTERM as an event: the first sets ``requested`` (and ``exit_code``), the
    second quits at once."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.hint = "interrupting (Ctrl-C again to quit at once)"
        self.exit_code = ExitCode.INTERRUPTED
        self._count = 0

    def install(self) -> Callable[[], None]:
        """Start listening; returns the function that stops it."""
        loop = asyncio.get_running_loop()
        try:
            for signum, code in _STOP_SIGNALS.items():
                loop.add_signal_handler(signum, self._fire, code)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            previous = {signum: signal.getsignal(signum) for signum in _STOP_SIGNALS}
            for signum, code in _STOP_SIGNALS.items():
                signal.signal(
                    signum, lambda *_, code=code: loop.call_soon_threadsafe(self._fire, code)
                )

            def restore() -> None:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)

            return restore

        def remove() -> None:
            for signum in _STOP_SIGNALS:
                loop.remove_signal_handler(signum)

        return remove

    def _fire(self, code: ExitCode = ExitCode.INTERRUPTED) -> None:
        self._count += 1
        if self._count == 1:
            self.exit_code = code
            note(self.hint)
            self.requested.set()
            return
        quit_now(self.exit_code)

    async def guard(self, work: Coroutine[Any, Any, T]) -> tuple[T | None, bool]:
        """Run ``work`` until it ends or Ctrl-C: ``(result, False)`` or ``(None, True)``."""
        if self.requested.is_set():
            work.close()
            return None, True
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.requested.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            stop.cancel()
        if task.done():
            return task.result(), False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None, True


# ---------------------------------------------------------------- configuration


def api_key(args: argparse.Namespace) -> str:
    """The key from ``--api-key-file`` or ``COMETAPI_KEY``; registered for redaction."""
    if args.api_key_file:
        path = Path(args.api_key_file).expanduser()
        what = "--api-key-file"
        data = read_capped(path, limit=MAX_KEY_FILE_BYTES, what=what, code=ExitCode.CONFIG)
        text = decode_text(data, path=path, what=what, code=ExitCode.CONFIG)
        lines = text.strip().splitlines()
        key = lines[0].strip() if lines else ""
        if not key:
            raise CliError(
                f"--api-key-file {path} is empty: put your CometAPI key on its first line",
                ExitCode.CONFIG,
            )
        if not key.isascii() or not key.isprintable() or " " in key:
            # Not echoed: it may be a real key with a stray character.
            raise CliError(
                f"--api-key-file {path}: the first line holds characters no CometAPI key has "
                "(spaces, control or non-ASCII characters): put the key alone on that line",
                ExitCode.CONFIG,
            )
    else:
        key = os.environ.get("COMETAPI_KEY", "").strip()
        if not key:
            raise CliError(
                "no API key: set COMETAPI_KEY or pass --api-key-file FILE (or try --fake)",
                ExitCode.CONFIG,
            )
    add_secret(key)
    return key


def base_url(args: argparse.Namespace) -> str:
    url = args.base_url or os.environ.get("COMETAPI_BASE_URL", "").strip() or DEFAULT_BASE_URL
    if not url.startswith(("https://", "http://")):
        raise CliError(
            f"the base URL must start with https:// or http://, got {url!r} "
            "(from --base-url or COMETAPI_BASE_URL)",
            ExitCode.CONFIG,
        )
    return url.rstrip("/")


def poll_policy(args: argparse.Namespace) -> PollPolicy:
    """The library's defaults, or all of them scaled from ``--poll-interval``."""
    every = args.poll_interval
    if every is None:
        return PollPolicy()
    return PollPolicy(
        initial_delay=every, interval=every, min_interval=min(0.5, every), max_interval=6 * every
    )


def fake_poll_policy(speed: float) -> PollPolicy:
    # The demo's tasks last seconds, not minutes: poll often enough that bars move. The
    # embedded fake shows every task at once, so an unknown id is unknown for good.
    return PollPolicy(
        initial_delay=0.4 / speed,
        interval=0.5 / speed,
        min_interval=0.2 / speed,
        max_interval=1.0 / speed,
        not_found_grace=2.0,
    )


def demo_lifecycle(speed: float) -> Callable[[Mapping[str, Any]], Any]:
    """Per-prompt lives for the embedded fake: 0.5–2.5 s queued, 2.5–7 s running (divided
    by ``speed``), fixed by a hash of the prompt, so a rerun of the demo looks the same. A
    prompt containing ``[fail]`` ends FAILED, to show what failures look like."""
    from ..testing import Lifecycle  # only in --fake mode: the package never imports it

    def choose(body: Mapping[str, Any]) -> Lifecycle:
        prompt = str(body.get("prompt") or body.get("promptText") or "")
        digest = hashlib.sha256(prompt.encode()).digest()
        queued = (0.5 + 2.0 * digest[0] / 255) / speed
        running = (2.5 + 4.5 * digest[1] / 255) / speed
        life = Lifecycle.by_time(queued, running)
        if "[fail]" in prompt.lower():
            life = life.failing("The prompt was flagged by moderation (demo).", "SAFETY.INPUT.TEXT")
        return life

    return choose


@attrs.frozen
class Session:
    client: Client
    base_url: str
    fake: bool


def _make_parent(journal: str) -> None:
    try:
        Path(journal).expanduser().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(
            f"cannot create the folder of the journal {journal}: {exc.strerror}", ExitCode.CONFIG
        ) from None


@contextlib.asynccontextmanager
async def connect(
    args: argparse.Namespace,
    *,
    journal: str | None,
    on_event: Callable[[Event], object] | None,
) -> AsyncIterator[Session]:
    """An open client: on the embedded fake with ``--fake``, else on CometAPI."""
    if journal is not None:
        _make_parent(journal)
    if args.fake:
        from ..testing import FakeCometAPI  # only in --fake mode: the package never imports it

        async with FakeCometAPI(lifecycle_for=demo_lifecycle(args.fake_speed)) as fake:
            client = Client(
                FAKE_KEY,
                base_url=fake.url,
                poll=fake_poll_policy(args.fake_speed),
                journal=journal,
                on_event=on_event,
            )
            async with client:
                yield Session(client, fake.url, True)
        return
    key, url = api_key(args), base_url(args)
    try:
        client = Client(
            key, base_url=url, poll=poll_policy(args), journal=journal, on_event=on_event
        )
    except ValueError as exc:
        raise CliError(str(exc), ExitCode.CONFIG) from None
    async with client:
        yield Session(client, url, False)


_WHERE = "check --base-url or COMETAPI_BASE_URL (default " + DEFAULT_BASE_URL + ")"


def classify(exc: BaseException, base: str | None = None) -> CliError:
    """The one line and exit code for an error that ends a command."""
    at = f" {base}" if base else ""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, AuthenticationError):
        return CliError(
            f"authentication failed ({exc}): check COMETAPI_KEY or --api-key-file, and the "
            f"base URL{at}",
            ExitCode.CONFIG,
        )
    if isinstance(exc, EndpointError):
        return CliError(
            f"the base URL{at} does not answer like CometAPI ({exc}): {_WHERE}", ExitCode.CONFIG
        )
    if isinstance(exc, TransportError):
        # The aiohttp error says what went wrong without repeating the URL.
        reason = exc.__cause__ or exc
        return CliError(f"cannot reach{at or ' the API'} ({reason}); {_WHERE}", ExitCode.CONFIG)
    if isinstance(exc, UnjournaledTask):
        return CliError(
            f"the journal could not record task {exc.task_id} ({exc.__cause__ or exc}); the "
            f"task was created and its id is in the results; follow it with: "
            f"cometrunway wait {exc.task_id}. No further requests were sent.",
            ExitCode.CONFIG,
        )
    if isinstance(exc, JournalError):
        return CliError(str(exc), ExitCode.CONFIG)
    if isinstance(exc, AmbiguousSubmitError):
        return CliError(str(exc), ExitCode.AMBIGUOUS)
    if isinstance(exc, CometRunwayError):
        return CliError(str(exc), ExitCode.FAILED)
    if isinstance(exc, OSError) and exc.filename:
        return CliError(f"{exc.filename}: {exc.strerror}", ExitCode.FAILED)
    return CliError(
        f"unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)", ExitCode.FAILED
    )


async def preflight(
    session: Session, *, task_id: str | None = None, route: PollRoute = "feed"
) -> Task | None:
    """One free poll before anything is paid for: a wrong key or base URL fails here, at
    once, instead of on every create after retries. An unknown id is the expected answer."""
    try:
        return await session.client.fetch(task_id or "cometrunway-preflight", route=route)
    except TaskNotFound:
        return None
    except (AuthenticationError, EndpointError, TransportError) as exc:
        raise classify(exc, session.base_url) from None
    except CometRunwayError as exc:
        log.debug("preflight poll answered %s; going on", exc)
        return None
