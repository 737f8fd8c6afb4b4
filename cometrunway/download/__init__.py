"""Streaming a finished task's outputs to disk: resumable, atomic, and without the API key.

Output URLs point at a storage host, not at CometAPI, and they expire (Runway: 24–48 h).
So downloads here:

* use their own aiohttp session with no default headers, no cookies and no environment
  credentials: the CometAPI key (and ``X-Runway-Version``) never reach the output host;
* stream each URL into a temporary file beside the destination and ``os.replace`` it into
  place only once the size matches ``Content-Length``/``Content-Range``: a failed download
  never leaves a partial file at the final path;
* retry transient failures with backoff and resume with ``Range: bytes=N-`` (starting over
  when the server answers 200 instead of 206); a ``.part`` file left by a killed download
  of the same file is resumed from (``parts``);
* check a body that came with no length for truncation as far as its type allows
  (``integrity``);
* refresh an expired URL (403/404/410) by polling the task once more and retrying with the
  fresh URL;
* name files from the task id and the URL's extension only, so a hostile URL or task id
  cannot write outside the destination folder, and distinct ids never share a file.

``Client.download``, ``TaskHandle.download`` and ``Client.download_many`` are the usual
entry points; the functions here take the client as their first argument.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from .._batching import attempt_each, check_concurrency
from ..errors import (
    BatchDownloadError,
    CometRunwayError,
    DownloadError,
    DownloadInterrupted,
    OutputExpired,
    OutputRejected,
    TaskFailed,
    TaskNotFound,
)
from ..models import PollRoute, Task, TaskStatus
from ..policies import RetryPolicy
from ..protocol import poll_route_of
from .naming import _host, _plan, _roles, _shown, output_filename
from .transfer import DOWNLOAD_TIMEOUT, Progress, _Expired, _fetch_to

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

log: logging.Logger = logging.getLogger("cometrunway.download")


# ---------------------------------------------------------------- naming


class Followed(Protocol):
    """A followed task (``TaskHandle``): awaiting it gives the finished ``Task``."""

    poll_route: PollRoute

    def __await__(self) -> Generator[Any, None, Task]: ...


class Fetcher(Protocol):
    """What downloads need from a client: one poll of a task (``Client.fetch``)."""

    async def fetch(self, task_id: str, *, route: PollRoute = "feed") -> Task: ...


# ---------------------------------------------------------------- one task


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
            first = poll_route_of(self.task)
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
    tasks: Iterable[Task | Followed],
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
        async def download_one(index: int, item: Task | Followed) -> list[Path]:
            task_route = route
            if not isinstance(item, Task):  # a handle: its task once finished, its route
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
