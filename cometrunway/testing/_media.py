"""What the fake serves under ``/cdn/{task_id}/{name}``: file names per kind of task, their
content types, and their bytes.

By default the bytes are real, tiny media shipped with the package (``media/``: a short
H.264 MP4, PNG poster and frames, an MP3; ``media/README.md`` says how they were made), so a
downloaded output opens in a player. With an ``output_size`` they are deterministic
pseudo-random bytes of that length instead, for tests of sizes and byte ranges.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

VIDEO_FILES = ("video.mp4", "poster.png", "last_frame.png")
IMAGE_FILES = ("image.png",)
AUDIO_FILES = ("audio.mp3",)
_AUDIO_ACTIONS = frozenset({"TEXT_TO_SPEECH", "SOUND_EFFECT"})

CONTENT_TYPES = {"mp4": "video/mp4", "png": "image/png", "mp3": "audio/mpeg"}
_OCTETS = "application/octet-stream"

# Output name -> packaged file (media/).
_PACKAGED = {
    "video.mp4": "video.mp4",
    "poster.png": "poster.png",
    "last_frame.png": "last_frame.png",
    "image.png": "image.png",
    "audio.mp3": "audio.mp3",
}


def files_for(action: str) -> tuple[str, ...]:
    """The output names of a task of ``action`` (main output first)."""
    if action == "TEXT_TO_IMAGE":
        return IMAGE_FILES
    if action in _AUDIO_ACTIONS:
        return AUDIO_FILES
    return VIDEO_FILES


def content_type(name: str) -> str:
    """The ``Content-Type`` the fake serves ``name`` with."""
    return CONTENT_TYPES.get(name.rsplit(".", 1)[-1], _OCTETS)


@functools.cache
def packaged(name: str) -> bytes:
    """The packaged media file behind output ``name``."""
    media = resources.files("cometrunway.testing").joinpath("media")
    return media.joinpath(_PACKAGED[name]).read_bytes()


def output_bytes(task_id: str, name: str, size: int | None) -> bytes:
    """What ``/cdn/{task_id}/{name}`` serves: the packaged file, or ``size`` stable bytes."""
    if size is None:
        return packaged(name)
    return hashlib.shake_256(f"{task_id}/{name}".encode()).digest(size)
