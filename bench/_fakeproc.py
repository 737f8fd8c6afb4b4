"""Run FakeCometAPI in its own process for benchmarks, so it does not share the client's CPU."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def fake_process(*args: str) -> Iterator[str]:
    """Start ``python -m cometrunway.testing --port 0 ARGS``; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cometrunway.testing", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the fake did not start: {url!r}")
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def rss_bytes() -> int:
    """This process's resident set size, from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")
