"""Value types: one frozen request model per CometAPI Runway route, and the ``Task`` snapshot.

Request models validate at construction what CometAPI's docs state (see :doc:`/quirks` where
they contradict themselves) and raise a ``ValueError`` naming the field and what is allowed.
What the docs call open-ended (model names, most ratios, durations the provider decides) is
not checked: CometAPI forwards it.
Every request takes ``extra``, a mapping merged into the wire body for fields the docs do not
show yet. Turning a model into a wire body is ``_converter``'s job.

The request models live in ``_requests_pro`` (``/runway/pro/*`` and shared pieces) and
``_requests_official`` (``/runwayml/v1/*``); this module is where they are imported from.
"""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any, TypeAlias

from attrs import field, frozen

from ._requests_official import (
    RunwayCharacterPerformance,
    RunwayImageToVideo,
    RunwaySoundEffect,
    RunwayTextToImage,
    RunwayTextToSpeech,
    RunwayVideoToVideo,
    RunwayVideoUpscale,
)
from ._requests_pro import (
    ActOne,
    ContentModeration,
    ImageToVideo,
    MediaInput,
    MotionVector,
    PollRoute,
    PromptFrame,
    ReferenceImage,
    TextToVideo,
    VideoReference,
    VideoToVideo,
)
from ._validators import COMETAPI_I2V_SEED_MAX, RUNWAY_SEED_MAX

__all__ = [
    "COMETAPI_I2V_SEED_MAX",
    "REQUEST_TYPES",
    "RUNWAY_SEED_MAX",
    "ActOne",
    "ContentModeration",
    "ImageToVideo",
    "MediaInput",
    "MotionVector",
    "PollRoute",
    "PromptFrame",
    "ReferenceImage",
    "Request",
    "RunwayCharacterPerformance",
    "RunwayImageToVideo",
    "RunwaySoundEffect",
    "RunwayTextToImage",
    "RunwayTextToSpeech",
    "RunwayVideoToVideo",
    "RunwayVideoUpscale",
    "Task",
    "TaskStatus",
    "TextToVideo",
    "VideoReference",
    "VideoToVideo",
]


Request: TypeAlias = (
    TextToVideo
    | ImageToVideo
    | VideoToVideo
    | ActOne
    | RunwayImageToVideo
    | RunwayVideoToVideo
    | RunwayVideoUpscale
    | RunwayCharacterPerformance
    | RunwayTextToImage
    | RunwayTextToSpeech
    | RunwaySoundEffect
)
REQUEST_TYPES: tuple[type, ...] = (
    TextToVideo,
    ImageToVideo,
    VideoToVideo,
    ActOne,
    RunwayImageToVideo,
    RunwayVideoToVideo,
    RunwayVideoUpscale,
    RunwayCharacterPerformance,
    RunwayTextToImage,
    RunwayTextToSpeech,
    RunwaySoundEffect,
)


# ---------------------------------------------------------------- task snapshots


class TaskStatus(enum.StrEnum):
    """Where a task stands; every status vocabulary CometAPI uses maps onto it (see C15 in
    :doc:`/quirks`)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED})


@frozen
class Task:
    """One snapshot of a remote task, normalised from whichever envelope the server used.

    ``outputs`` are the result URLs (video first); ``poster_url`` and ``last_frame_url`` the
    cover and last-frame images when the provider gives them. ``raw_status`` is the status
    word as sent; ``raw`` the whole last body (parsed on access from ``body``, the bytes
    as received, so that thousands of tracked snapshots stay small), for what the model
    does not name. Output URLs expire (Runway: 24–48 h): download promptly.
    ``estimated_cost`` and ``cost`` are credits when the server says (Runway's
    ``estimatedCost``/``cost``, see §8.2 in :doc:`/quirks`), else None.
    """

    task_id: str
    status: TaskStatus
    progress: float | None = None
    outputs: tuple[str, ...] = ()
    video_url: str | None = None
    error: str | None = None
    error_code: str | None = None
    _raw: Any = field(default=None, eq=False, repr=False, alias="raw")
    raw_status: str | None = None
    poster_url: str | None = None
    last_frame_url: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    body: bytes | None = field(default=None, eq=False, repr=False)
    estimated_cost: float | None = None
    cost: float | None = None

    @property
    def raw(self) -> Any:
        """The last body as JSON (what the envelope said beyond the named fields)."""
        if self._raw is not None or self.body is None:
            return self._raw
        return json.loads(self.body)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def all_urls(self) -> tuple[str, ...]:
        """Every downloadable URL: outputs, then poster and last frame when present."""
        extra = (u for u in (self.poster_url, self.last_frame_url) if u)
        seen: dict[str, None] = dict.fromkeys(self.outputs)
        seen.update(dict.fromkeys(extra))
        return tuple(seen)

    @classmethod
    def pending(cls, task_id: str) -> Task:
        """A placeholder snapshot for a task not polled yet."""
        return cls(task_id=task_id, status=TaskStatus.PENDING)
