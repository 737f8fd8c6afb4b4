"""One URL streamed into one file: resumable (``Range``), atomic (a temporary file
replaced into place once complete), retried with backoff while it makes progress."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import aiohttp
import backoff
from aiohttp.helpers import BasicAuth, get_env_proxy_for_url
from yarl import URL

from ..errors import DownloadInterrupted, OutputRejected
from ..policies import RetryPolicy
from ..protocol import parse_retry_after
from .integrity import truncation_problem
from .naming import _host, _shown
from .parts import complete_part, discard_part, open_part

log: logging.Logger = logging.getLogger("cometrunway.download")

Progress = Callable[[int, int | None], Any]
"""``progress(bytes_done, total_or_None)``, called per file as bytes arrive (may be async)."""

# Storage hosts can be slow to start a large body but should keep it flowing.
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=60)
_CHUNK = 256 * 1024
_FLUSH_AT = 1024 * 1024  # write to disk in MiB pieces, off the event loop
_EXPIRED = frozenset({403, 404, 410})  # how S3-style stores answer a stale signed URL
_TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)


# ---------------------------------------------------------------- errors


class _Transient(Exception):
    """One attempt failed in a way a later attempt may not (internal)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Expired(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


# ---------------------------------------------------------------- one file


class _Transfer:
    """One URL being written to one temporary file, across attempts."""

    def __init__(self, url: str, file: IO[bytes], progress: Progress | None) -> None:
        self.url = url
        self.file = file
        self.progress = progress
        self.offset = 0  # bytes on disk, all of them a prefix of the file
        self.total: int | None = None
        self.best = 0  # the furthest offset any attempt reached
        self.fruitless = 0  # consecutive attempts that gained nothing
        self.attempts = 0
        self.ranges = True  # False once the server said it cannot do Range
        self.validator: str | None = None  # ETag / Last-Modified, for If-Range
        self.complete = False
        self.proxy: tuple[URL | None, BasicAuth | None] | None = None  # looked up once

    async def restart(self) -> None:
        await asyncio.to_thread(_truncate, self.file)
        self.offset = 0
        self.total = None

    async def report(self) -> None:
        if self.progress is not None:
            result = self.progress(self.offset, self.total)
            if inspect.isawaitable(result):
                await result


def _truncate(file: IO[bytes]) -> None:
    file.seek(0)
    file.truncate()


def _finish_file(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())  # the data is on disk before the rename makes it visible


def _env_proxy(url: str) -> tuple[URL | None, BasicAuth | None]:
    """The proxy the environment names for ``url`` (honouring ``NO_PROXY``), or none."""
    try:
        return get_env_proxy_for_url(URL(url))
    except LookupError:
        return None, None


async def _attempt(session: aiohttp.ClientSession, transfer: _Transfer) -> None:
    """One GET of the URL, from ``transfer.offset`` on. Raises ``_Transient`` to be retried,
    ``_Expired`` for a stale URL, ``OutputRejected`` for anything else."""
    transfer.attempts += 1
    headers = {"Accept-Encoding": "identity"}  # byte offsets must mean file offsets
    if transfer.offset > 0 and transfer.ranges:
        headers["Range"] = f"bytes={transfer.offset}-"
        if transfer.validator:
            # The file changed since the first part? Then the server sends it whole (200).
            headers["If-Range"] = transfer.validator
    if transfer.proxy is None:
        # HTTP(S)_PROXY / NO_PROXY as users expect, without the session's trust_env: that
        # would also take credentials from .netrc for the output host, which gets none.
        # The lookup may read files: off the loop, once per output.
        transfer.proxy = await asyncio.to_thread(_env_proxy, transfer.url)
    proxy, proxy_auth = transfer.proxy
    try:
        async with session.get(
            transfer.url, headers=headers, proxy=proxy, proxy_auth=proxy_auth
        ) as response:
            await _receive(response, transfer)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # Some aiohttp errors quote the whole URL; its query is a credential: cut it out.
        text = str(exc)
        query = urlsplit(transfer.url).query
        if query:
            text = text.replace(query, "…")
        raise _Transient(f"{type(exc).__name__}: {text}") from None
    finally:
        if transfer.offset > transfer.best:
            transfer.best = transfer.offset
            transfer.fruitless = 0
        elif not transfer.complete:
            transfer.fruitless += 1


async def _receive(response: aiohttp.ClientResponse, transfer: _Transfer) -> None:
    status = response.status
    if status in _EXPIRED:
        raise _Expired(status, await response.content.read(2048))
    if status in _TRANSIENT:
        raise _Transient(
            f"HTTP {status}", retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if status == 416 and transfer.offset > 0:
        match = _UNSATISFIED_RANGE.match(response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == transfer.offset:
            transfer.total = transfer.offset  # we already had every byte
            transfer.complete = True
            return
        await transfer.restart()
        raise _Transient("HTTP 416: the range no longer fits the file; starting over")
    if status not in (200, 206):
        body = await response.content.read(2048)
        raise OutputRejected(
            f"the output host {_host(transfer.url)} answered HTTP {status} for "
            f"{_shown(transfer.url)}",
            status=status,
            body=body,
        )

    if response.headers.get("Accept-Ranges", "").strip().lower() == "none":
        transfer.ranges = False
    etag = response.headers.get("ETag", "")
    if etag and not etag.startswith("W/"):  # If-Range takes strong validators only
        transfer.validator = etag
    elif response.headers.get("Last-Modified"):
        transfer.validator = response.headers["Last-Modified"]

    if status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != transfer.offset:
            # Not the part we asked for: fetch the whole file instead.
            transfer.ranges = False
            await transfer.restart()
            raise _Transient("HTTP 206 for another range than asked; starting over")
        if match.group(3) != "*":
            transfer.total = int(match.group(3))
    else:
        if transfer.offset > 0:
            log.info(
                "%s ignored the range: downloading it again from the start", _host(transfer.url)
            )
            await transfer.restart()
        transfer.total = response.content_length
    # No length and no chunked framing: the body ends when the connection closes, so a cut
    # connection looks like a complete body (issue: truncated downloads accepted as whole).
    framed = "chunked" in response.headers.get("Transfer-Encoding", "").lower()
    unframed = transfer.total is None and not framed

    await transfer.report()
    buffer = bytearray()
    try:
        async for chunk in response.content.iter_chunked(_CHUNK):
            buffer += chunk
            if len(buffer) >= _FLUSH_AT:
                await _flush(transfer, buffer)
            if transfer.progress is not None:
                result = transfer.progress(transfer.offset + len(buffer), transfer.total)
                if inspect.isawaitable(result):
                    await result
    finally:
        # What arrived before a failure is a valid prefix: keep it for the resume.
        await _flush(transfer, buffer)

    if transfer.total is not None and transfer.offset != transfer.total:
        if transfer.offset < transfer.total:
            raise _Transient(f"body ended at {transfer.offset} of {transfer.total} bytes")
        await transfer.restart()
        raise _Transient(f"body longer than the announced {transfer.total} bytes")
    if unframed:
        problem = await asyncio.to_thread(_check_whole, transfer.file)
        if problem is not None:
            # What arrived is still a valid prefix: the retry resumes from it with Range.
            raise _Transient(
                f"the body came without a length and looks cut short at {transfer.offset} "
                f"bytes: {problem}"
            )
    transfer.complete = True


def _check_whole(file: IO[bytes]) -> str | None:
    try:
        return truncation_problem(file)
    finally:
        file.seek(0, os.SEEK_END)  # later writes append after the bytes already there


async def _flush(transfer: _Transfer, buffer: bytearray) -> None:
    if buffer:
        data = bytes(buffer)
        buffer.clear()
        await asyncio.to_thread(transfer.file.write, data)
        transfer.offset += len(data)


async def _fetch_to(
    session: aiohttp.ClientSession,
    url: str,
    final: Path,
    *,
    retry: RetryPolicy,
    progress: Progress | None,
) -> None:
    """Download ``url`` to ``final`` atomically. Raises ``_Expired`` for a stale URL (the
    caller refreshes it), ``DownloadInterrupted`` or ``OutputRejected`` otherwise."""
    # Beside the final file, so the rename into place is atomic on the same filesystem; a
    # part left by a killed download of the same file is resumed from (see parts.py).
    temp, file, held = await asyncio.to_thread(open_part, final)
    transfer = _Transfer(url, file, progress)
    transfer.offset = transfer.best = held
    # Tries count attempts in a row that gained no bytes: a long file on a flaky link keeps
    # going while it makes progress; a hard cap still bounds the whole transfer.
    hard_cap = 4 * retry.max_tries + 16

    def give_up(exc: Exception) -> bool:
        return transfer.fruitless >= retry.max_tries or transfer.attempts >= hard_cap

    def on_backoff(details: Any) -> None:
        log.info(
            "download from %s interrupted (%s) at %d bytes; retrying in %.1fs",
            _host(url),
            details.get("exception"),
            transfer.offset,
            details.get("wait", 0.0),
        )

    run = backoff.on_exception(
        retry.waits,
        _Transient,
        max_tries=None,
        giveup=give_up,
        jitter=None,
        on_backoff=on_backoff,
        logger=None,
        max_retry_after=retry.max_retry_after,
    )(_attempt)
    done = False
    try:
        try:
            await run(session, transfer)
        except _Transient as exc:
            raise DownloadInterrupted(
                f"downloading {_shown(url)} from {_host(url)} failed after "
                f"{transfer.attempts} attempts ({exc}); the host may be down or the link "
                "unstable: try again later (the URL expires, so not too late)",
                request_sent=True,
            ) from exc
        await asyncio.to_thread(_finish_file, file)
        await asyncio.to_thread(complete_part, temp, file, final)
        done = True
    finally:
        if not done:
            # Shielded: even a cancelled download removes its temporary file.
            await asyncio.shield(asyncio.to_thread(discard_part, temp, file))
