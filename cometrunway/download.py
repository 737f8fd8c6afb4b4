"""Streaming a finished task's outputs to disk: resumable, atomic, and without the API key.

Output URLs point at a storage host, not at CometAPI, and they expire (wire reference §1.10,
Appendix 5). So downloads here:

* use their own aiohttp session with no default headers, no cookies and no environment
  credentials: the CometAPI key (and ``X-Runway-Version``) never reach the output host;
* stream each URL into a temporary file beside the destination and ``os.replace`` it into
  place only once the size matches ``Content-Length``/``Content-Range``: a failed download
  never leaves a partial file at the final path;
* retry transient failures with backoff and resume with ``Range: bytes=N-`` (starting over
  when the server answers 200 instead of 206);
* refresh an expired URL (403/404/410) by polling the task once more and retrying with the
  fresh URL;
* name files from the task id and the URL's extension only, so a hostile URL or task id
  cannot write outside the destination folder.

``Client.download``, ``TaskHandle.download`` and ``Client.download_many`` are the usual
entry points; the functions here take the client as their first argument.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlsplit

import aiohttp
import backoff
from attrs import frozen

from ._batching import attempt_each, check_concurrency
from .errors import (
    BatchDownloadError,
    CometRunwayError,
    DownloadError,
    DownloadInterrupted,
    OutputExpired,
    OutputRejected,
    TaskFailed,
    TaskNotFound,
)
from .handles import TaskHandle
from .models import PollRoute, Task, TaskStatus
from .policies import RetryPolicy

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "BatchDownloadError",
    "DownloadError",
    "DownloadInterrupted",
    "OutputExpired",
    "OutputRejected",
    "Progress",
    "download_many",
    "download_task",
    "output_filename",
]

log = logging.getLogger("cometrunway.download")

Progress = Callable[[int, int | None], Any]
"""``progress(bytes_done, total_or_None)``, called per file as bytes arrive (may be async)."""

# Storage hosts can be slow to start a large body but should keep it flowing.
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=60)
_CHUNK = 256 * 1024
_FLUSH_AT = 1024 * 1024  # write to disk in MiB pieces, off the event loop
_EXPIRED = frozenset({403, 404, 410})  # how S3-style stores answer a stale signed URL
_TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
_MAX_RETRY_AFTER = 300.0
_EXTENSION = re.compile(r"^[A-Za-z0-9]{1,10}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
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


# ---------------------------------------------------------------- naming


class Fetcher(Protocol):
    """What downloads need from a client: one poll of a task (``Client.fetch``)."""

    async def fetch(self, task_id: str, *, route: PollRoute = "feed") -> Task: ...


def _shown(url: str) -> str:
    """The URL without its query: signed URLs carry credentials there."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _host(url: str) -> str:
    return urlsplit(url).hostname or "?"


def _safe_stem(task_id: str) -> str:
    # Only [A-Za-z0-9._-] survives, with no leading dot: no separators, no "..", no
    # hidden or empty names, whatever the server put in the id.
    stem = _UNSAFE.sub("", task_id).lstrip(".")[:96].rstrip(".")
    return stem or "task"


def _extension(url: str, default: str) -> str:
    last = unquote(urlsplit(url).path).replace("\\", "/").rsplit("/", 1)[-1]
    _, dot, ext = last.rpartition(".")
    return f".{ext.lower()}" if dot and _EXTENSION.match(ext) else default


def _role_suffix(role: str) -> str:
    return "" if role == "video" else f".{role}"


def _default_extension(role: str) -> str:
    return ".png" if role in ("poster", "last_frame") else ".mp4"


def output_filename(task_id: str, url: str, role: str = "video") -> str:
    """The file name an output gets: ``{task_id}{ext}`` for the main output,
    ``{task_id}.{role}{ext}`` for the others (``poster``, ``last_frame``, ``2``, ``3``…).

    The extension is the URL's (letters and digits only), else ``.mp4`` for outputs and
    ``.png`` for images. Only ``[A-Za-z0-9._-]`` appear in the result, it never starts with
    a dot, and it names a file directly inside the destination folder.
    """
    role_part = _UNSAFE.sub("", _role_suffix(role))
    return f"{_safe_stem(task_id)}{role_part}{_extension(url, _default_extension(role))}"


def _roles(task: Task) -> list[tuple[str, str]]:
    """(role, url) for each downloadable URL, in ``Task.all_urls`` order."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    candidates = [("video" if i == 0 else str(i + 1), url) for i, url in enumerate(task.outputs)]
    candidates += [("poster", task.poster_url or ""), ("last_frame", task.last_frame_url or "")]
    for role, url in candidates:
        if url and url not in seen:
            seen.add(url)
            pairs.append((role, url))
    return pairs


@frozen
class _Output:
    role: str
    url: str
    path: Path


def _plan(task: Task, dest: Path, *, folder: bool | None) -> list[_Output]:
    """Where each output goes; creates the folders. Runs in a thread (it touches disk)."""
    dest = dest.expanduser()
    if folder is None:
        # A path with a suffix that is not an existing folder names the main file.
        folder = dest.is_dir() or (not dest.exists() and not dest.suffix)
    roles = _roles(task)
    outputs: list[_Output] = []
    if folder:
        dest.mkdir(parents=True, exist_ok=True)
        base = dest.resolve()
        for role, url in roles:
            path = base / output_filename(task.task_id, url, role)
            if path.parent != base:  # cannot happen with safe names; never write elsewhere
                raise DownloadError(f"refusing to write {path} outside {base}")
            outputs.append(_Output(role, url, path))
        return outputs
    dest.parent.mkdir(parents=True, exist_ok=True)
    main = dest.resolve()
    for role, url in roles:
        if role == "video":
            outputs.append(_Output(role, url, main))
        else:
            # Extras sit beside the chosen file: cat.mp4 -> cat.poster.png.
            suffix = _UNSAFE.sub("", _role_suffix(role))
            name = f"{main.stem}{suffix}{_extension(url, _default_extension(role))}"
            outputs.append(_Output(role, url, main.parent / name))
    return outputs


# ---------------------------------------------------------------- one file


def _parse_retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


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
    try:
        async with session.get(transfer.url, headers=headers) as response:
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
            f"HTTP {status}", retry_after=_parse_retry_after(response.headers.get("Retry-After"))
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
    transfer.complete = True


async def _flush(transfer: _Transfer, buffer: bytearray) -> None:
    if buffer:
        data = bytes(buffer)
        buffer.clear()
        await asyncio.to_thread(transfer.file.write, data)
        transfer.offset += len(data)


def _open_temp(final: Path) -> tuple[Path, IO[bytes]]:
    # Beside the final file, so os.replace is an atomic rename on the same filesystem.
    temp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
    return temp, temp.open("w+b")


def _discard(temp: Path, file: IO[bytes]) -> None:
    try:
        file.close()
    finally:
        temp.unlink(missing_ok=True)


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
    temp, file = await asyncio.to_thread(_open_temp, final)
    transfer = _Transfer(url, file, progress)
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
        max_retry_after=_MAX_RETRY_AFTER,
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
        await asyncio.to_thread(file.close)
        await asyncio.to_thread(os.replace, temp, final)
        done = True
    finally:
        if not done:
            # Shielded: even a cancelled download removes its temporary file.
            await asyncio.shield(asyncio.to_thread(_discard, temp, file))


# ---------------------------------------------------------------- one task


def _guess_route(task: Task) -> PollRoute:
    raw = task.raw
    if isinstance(raw, dict) and "id" in raw and "task_id" not in raw and "code" not in raw:
        return "tasks"  # a bare Runway task (§1.10 T1) comes from the official route
    return "feed"


class _Refresher:
    """Re-polls a task at most once for fresh output URLs (they expire, §1.10)."""

    def __init__(self, client: Fetcher, task: Task, route: PollRoute | None) -> None:
        self.client = client
        self.task = task
        self.route = route
        self.refreshed = False

    def url_for(self, role: str, default: str) -> str:
        return dict(_roles(self.task)).get(role, default)

    async def refresh(self, role: str, url: str, expired: _Expired) -> str:
        host = _host(url)
        if self.refreshed:
            raise self.expired_error(role, url, expired, "even right after re-polling the task")
        self.refreshed = True
        log.info("output URL on %s expired (HTTP %d): re-polling the task", host, expired.status)
        routes: list[PollRoute] = [self.route] if self.route else []
        if not routes:
            first = _guess_route(self.task)
            routes = [first, "tasks" if first == "feed" else "feed"]
        error: Exception | None = None
        for route in routes:
            try:
                fresh = await self.client.fetch(self.task.task_id, route=route)
            except TaskNotFound as exc:
                error = exc
                continue
            except CometRunwayError as exc:
                error = exc
                break
            fresh_url = dict(_roles(fresh)).get(role)
            if fresh.status is TaskStatus.SUCCEEDED and fresh_url:
                self.task = fresh
                return fresh_url
            raise self.expired_error(
                role, url, expired, f"and the task now says {fresh.status.value}"
            )
        raise self.expired_error(
            role, url, expired, f"and re-polling the task failed ({error})"
        ) from error

    def expired_error(self, role: str, url: str, expired: _Expired, why: str) -> OutputExpired:
        return OutputExpired(
            f"the {role} URL on {_host(url)} ({_shown(url)}) was refused as expired "
            f"(HTTP {expired.status}) {why}; output URLs last 24–48 h: poll the task again "
            f"with client.fetch({self.task.task_id!r}) and download promptly",
            status=expired.status,
            body=expired.body,
        )


def _check_downloadable(task: Task) -> None:
    if task.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        raise TaskFailed(task)
    if task.status is not TaskStatus.SUCCEEDED:
        raise ValueError(
            f"task {task.task_id} is {task.status.value}, not finished: await its handle "
            "before downloading"
        )
    if not task.all_urls:
        raise DownloadError(f"task {task.task_id} succeeded but gave no output URL")


def _new_session(limit: int = 8) -> aiohttp.ClientSession:
    # No default headers (no Authorization, no X-Runway-Version), no cookies carried from
    # one host to another, no credentials from the environment (.netrc, proxies).
    return aiohttp.ClientSession(
        timeout=DOWNLOAD_TIMEOUT,
        connector=aiohttp.TCPConnector(limit=limit),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        trust_env=False,
    )


def _check_session(session: aiohttp.ClientSession) -> None:
    names = {name.lower() for name in session.headers}
    if session.auth is not None or names & {"authorization", "x-runway-version"}:
        raise ValueError(
            "the download session must not carry credentials or CometAPI headers: the "
            "output host is not CometAPI (pass no session to get a clean one)"
        )


async def _download(
    client: Fetcher,
    task: Task,
    dest: Path,
    *,
    session: aiohttp.ClientSession,
    route: PollRoute | None,
    retry: RetryPolicy,
    progress: Progress | None,
    folder: bool | None,
) -> list[Path]:
    _check_downloadable(task)
    outputs = await asyncio.to_thread(_plan, task, dest, folder=folder)
    refresher = _Refresher(client, task, route)
    paths: list[Path] = []
    for output in outputs:
        url = refresher.url_for(output.role, output.url)
        try:
            await _fetch_to(session, url, output.path, retry=retry, progress=progress)
        except _Expired as expired:
            url = await refresher.refresh(output.role, url, expired)
            try:
                await _fetch_to(session, url, output.path, retry=retry, progress=progress)
            except _Expired as again:
                raise refresher.expired_error(
                    output.role, url, again, "even with the URL re-polling gave"
                ) from None
        log.info("downloaded %s to %s", _shown(url), output.path)
        paths.append(output.path)
    return paths


async def download_task(
    client: Fetcher,
    task: Task,
    dest: Path,
    *,
    progress: Progress | None = None,
    route: PollRoute | None = None,
    retry: RetryPolicy | None = None,
    session: aiohttp.ClientSession | None = None,
) -> list[Path]:
    """Stream every URL of a succeeded ``task`` (outputs, poster, last frame) to ``dest``.

    ``dest`` is a folder (created if missing; files are named by ``output_filename``) or,
    when it has a suffix and is not an existing folder, the path of the main output (the
    others go beside it: ``cat.mp4``, ``cat.poster.png``). Returns the paths written, main
    output first.

    ``route`` is the task's poll route ("feed" or "tasks"), used to re-poll once when a URL
    has expired; None guesses from the last answer and tries the other route if needed.
    ``progress(bytes_done, total_or_None)`` is called for each file in turn (``bytes_done``
    starts from 0 for each file, and again if the server makes a resume start over).
    ``session`` may be an aiohttp session of yours without credentials; by default one is
    made and closed here.

    Raises ``TaskFailed`` for a failed task, ``OutputExpired``, ``OutputRejected`` or
    ``DownloadInterrupted`` (all ``DownloadError``) when a file could not be had; the final
    path then holds nothing new.
    """
    retry = retry if retry is not None else RetryPolicy()
    if session is not None:
        _check_session(session)
        return await _download(
            client,
            task,
            dest,
            session=session,
            route=route,
            retry=retry,
            progress=progress,
            folder=None,
        )
    async with _new_session() as own:
        return await _download(
            client,
            task,
            dest,
            session=own,
            route=route,
            retry=retry,
            progress=progress,
            folder=None,
        )


async def download_many(
    client: Fetcher,
    tasks: Iterable[Task | TaskHandle],
    dest: Path,
    *,
    max_concurrency: int = 4,
    route: PollRoute | None = None,
    retry: RetryPolicy | None = None,
    session: aiohttp.ClientSession | None = None,
) -> list[list[Path]]:
    """Download several tasks into the folder ``dest``, ``max_concurrency`` tasks at a time,
    over one session. Returns the paths per task, in input order.

    Handles are awaited first (and take their own poll route). Never fails fast: every task
    is attempted; if any failed, raises ``BatchDownloadError`` whose ``paths`` holds each
    task's paths or None.
    """
    check_concurrency(max_concurrency)
    if session is not None:
        _check_session(session)
    items = list(tasks)
    policy = retry if retry is not None else RetryPolicy()

    async def run(http: aiohttp.ClientSession) -> tuple[list[list[Path] | None], list[Exception]]:
        async def download_one(index: int, item: Task | TaskHandle) -> list[Path]:
            task_route = route
            if isinstance(item, TaskHandle):
                task_route = task_route or item.poll_route
                item = await item
            return await _download(
                client,
                item,
                dest,
                session=http,
                route=task_route,
                retry=policy,
                progress=None,
                folder=True,
            )

        return await attempt_each(items, download_one, max_concurrency)

    if session is not None:
        results, errors = await run(session)
    else:
        async with _new_session(limit=2 * max_concurrency) as own:
            results, errors = await run(own)
    if errors:
        raise BatchDownloadError(f"{len(errors)} of {len(items)} downloads failed", errors, results)
    return [paths for paths in results if paths is not None]
