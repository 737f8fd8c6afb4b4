"""A download killed with SIGKILL mid-body: the next download of the same file into that
folder resumes from the ``.part`` file it left (a Range request) and leaves no leftovers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path

import pytest
from support import FAST_RETRY

from cometrunway import Task, TaskStatus
from cometrunway.download import download_task
from cometrunway.download.parts import LOCKS, PART_SUFFIX

#: Bigger than the 1 MiB the transfer buffers before writing, so the killed run has
#: written part of it to disk.
BODY = os.urandom(3 * 1024 * 1024)
#: What the first server sends before it stalls (the killed download sees no more).
SENT_BEFORE_STALL = 2 * 1024 * 1024
#: Bound on how long the killed run may take to put its first MiB on disk.
WRITE_TIMEOUT = 60.0

CHILD = """
import asyncio, sys
from pathlib import Path
from cometrunway import Task, TaskStatus
from cometrunway.download import download_task

class NoFetch:
    async def fetch(self, task_id, *, route="feed"):
        raise AssertionError("no refresh expected")

task = Task("t-killed", TaskStatus.SUCCEEDED, outputs=(sys.argv[1],))
asyncio.run(download_task(NoFetch(), task, Path(sys.argv[2])))
"""


class Storage:
    """An output host: stalls the first GET after part of the body; honours Range after."""

    def __init__(self) -> None:
        self.ranges: list[str | None] = []
        self.release = asyncio.Event()
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Storage:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/t.mp4"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            match = re.search(r"^range:\s*bytes=(\d+)-\r$", head, re.IGNORECASE | re.MULTILINE)
            self.ranges.append(match.group(0).split(":", 1)[1].strip() if match else None)
            if len(self.ranges) == 1:
                writer.write(_head(200, len(BODY)) + BODY[:SENT_BEFORE_STALL])
                await writer.drain()
                await self.release.wait()  # never finishes: the client is killed first
                return
            start = int(match.group(1)) if match else 0
            extra = f"Content-Range: bytes {start}-{len(BODY) - 1}/{len(BODY)}\r\n"
            status = 206 if match else 200
            writer.write(_head(status, len(BODY) - start, extra) + BODY[start:])
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _head(status: int, length: int, extra: str = "") -> bytes:
    reason = "OK" if status == 200 else "Partial Content"
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: {length}\r\n{extra}"
        "Content-Type: video/mp4\r\nConnection: close\r\n\r\n"
    ).encode()


def part_sizes(folder: Path) -> list[int]:
    return [p.stat().st_size for p in folder.iterdir() if p.name.endswith(PART_SUFFIX)]


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class NoFetch:
    async def fetch(self, task_id: str, *, route: str = "feed") -> Task:
        raise AssertionError("no refresh expected")


@pytest.mark.slow
@pytest.mark.skipif(not LOCKS, reason="adopting leftovers needs POSIX flock")
async def test_a_sigkilled_download_is_resumed_from_its_part_file(tmp_path: Path) -> None:
    async with Storage() as storage:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, storage.url, str(tmp_path)
        )
        try:
            async with asyncio.timeout(WRITE_TIMEOUT):
                while not any(size > 0 for size in part_sizes(tmp_path)):
                    await asyncio.sleep(0.05)  # waiting on a condition: bytes on disk
        finally:
            child.send_signal(signal.SIGKILL)
            await child.wait()
        [left] = part_sizes(tmp_path)
        assert 0 < left <= SENT_BEFORE_STALL
        task = Task("t-killed", TaskStatus.SUCCEEDED, outputs=(storage.url,))
        paths = await download_task(NoFetch(), task, tmp_path, retry=FAST_RETRY)
    assert storage.ranges == [None, f"bytes={left}-"]
    assert paths[0].read_bytes() == BODY
    assert names_in(tmp_path) == ["t-killed.mp4"]
