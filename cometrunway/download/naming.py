"""Where outputs go: file names from the task id and the URL's extension only, so a hostile
URL or task id cannot write outside the destination folder."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from attrs import frozen

from ..errors import DownloadError
from ..models import Task

_EXTENSION = re.compile(r"^[A-Za-z0-9]{1,10}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_STEM = 96
_DIGEST_CHARS = 12  # 48 bits: no two ids of one folder share a name in practice


def _shown(url: str) -> str:
    """The URL without its query: signed URLs carry credentials there."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _host(url: str) -> str:
    return urlsplit(url).hostname or "?"


def _safe_stem(task_id: str) -> str:
    # Only [A-Za-z0-9._-] survives, with no leading dot: no separators, no "..", no
    # hidden or empty names, whatever the server put in the id.
    stem = _UNSAFE.sub("", task_id).lstrip(".")[:_MAX_STEM].rstrip(".")
    if stem and stem == task_id:
        return stem
    # Cleaning changed the id, so two ids could clean to the same name ("a/b" and "ab"):
    # a digest of the real id keeps every task's files apart.
    digest = hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{stem or 'task'}-{digest[:_DIGEST_CHARS]}"


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
    ``.png`` for images. A task id that is not already a safe name is cleaned and gets a
    digest of the real id appended (``a/b`` → ``ab-<12 hex>``), so distinct ids never share
    a file. Only ``[A-Za-z0-9._-]`` appear in the result, it never starts with
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
