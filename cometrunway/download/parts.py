"""Temporary ``.part`` files: one per download in flight, taken over after a crash.

Each download streams into ``.{final name}.{random}.part`` beside its destination and holds
an exclusive ``flock`` on it while it runs. A process killed mid-download (SIGKILL, power
loss) leaves its part file behind with the lock released, so the next download of the same
file into that folder adopts the largest such leftover (it resumes from it with a Range
request, which the transfer verifies with ``Content-Range``) and removes the other
leftovers. A part file whose lock is held belongs to a download still running and is left
alone.

File names come from the task id and the output's role, and a task's outputs never change,
so a leftover of the same name holds a prefix of the same file. If the server disagrees
(a 200 instead of 206, a range that does not fit) the transfer starts over.

Locks need POSIX ``fcntl``; elsewhere leftovers are neither adopted nor removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import IO

log: logging.Logger = logging.getLogger("cometrunway.download")

PART_SUFFIX = ".part"
_STAGING_SUFFIX = ".new"  # a part file not yet locked: other processes ignore it

if sys.platform != "win32":
    import fcntl

    def _try_lock(file: IO[bytes]) -> bool:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    LOCKS = True
else:  # pragma: no cover - no flock: no adoption

    def _try_lock(file: IO[bytes]) -> bool:
        return False

    LOCKS = False


def _prefix(final: Path) -> str:
    return f".{final.name}."


def _leftovers(final: Path) -> list[Path]:
    prefix = _prefix(final)
    try:
        names = os.listdir(final.parent)
    except OSError:
        return []
    found = [
        final.parent / name
        for name in names
        if name.startswith(prefix) and name.endswith(PART_SUFFIX)
    ]
    return sorted(found, key=_size, reverse=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _same_file(path: Path, file: IO[bytes]) -> bool:
    try:
        return os.path.samestat(path.stat(), os.fstat(file.fileno()))
    except OSError:
        return False


def _claim(path: Path) -> IO[bytes] | None:
    """The leftover at ``path`` opened and locked, or None if it is in use or gone."""
    try:
        file = path.open("r+b")
    except OSError:
        return None
    # Locked and still at its path: its owner is dead and did not finish (a finished
    # download renames its part into place before it lets the lock go).
    if _try_lock(file) and _same_file(path, file):
        return file
    file.close()
    return None


def open_part(final: Path) -> tuple[Path, IO[bytes], int]:
    """A locked part file for ``final``: a crashed download's leftover if one can be
    adopted, else a new empty one. Returns its path, the open file (positioned at its end)
    and the bytes it already holds. Removes other dead leftovers of ``final``."""
    adopted: tuple[Path, IO[bytes]] | None = None
    if LOCKS:
        for path in _leftovers(final):
            file = _claim(path)
            if file is None:
                continue
            if adopted is None:
                adopted = (path, file)
                continue
            log.info("removing %s, left by an interrupted download", path.name)
            with contextlib.suppress(OSError):
                path.unlink()
            file.close()
    if adopted is not None:
        path, file = adopted
        held = file.seek(0, os.SEEK_END)
        log.info("resuming from %s (%d bytes), left by an interrupted download", path.name, held)
        return path, file, held
    # Made under a staging name and locked before it gets the name others look for.
    token = secrets.token_hex(4)
    staging = final.with_name(f"{_prefix(final)}{token}{PART_SUFFIX}{_STAGING_SUFFIX}")
    path = final.with_name(f"{_prefix(final)}{token}{PART_SUFFIX}")
    file = staging.open("x+b")
    _try_lock(file)
    os.replace(staging, path)
    return path, file, 0


def complete_part(path: Path, file: IO[bytes], final: Path) -> None:
    """Move the finished part into place. The rename happens before the file (and its lock)
    is closed, so no other process can adopt a part that is already the final file."""
    if LOCKS:
        try:
            os.replace(path, final)
        finally:
            file.close()
    else:  # pragma: no cover - Windows cannot rename an open file
        file.close()
        os.replace(path, final)


def discard_part(path: Path, file: IO[bytes]) -> None:
    """Remove a part file that will not be finished (the download failed or was cancelled)."""
    try:
        if LOCKS:
            path.unlink(missing_ok=True)
    finally:
        file.close()
        if not LOCKS:  # pragma: no cover
            path.unlink(missing_ok=True)
