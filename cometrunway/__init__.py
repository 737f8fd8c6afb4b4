"""cometrunway: an asyncio client for CometAPI's Runway video routes.

Submit a generation, get a ``TaskHandle``, and one poller coroutine follows every task until
it is done. See ``DESIGN`` in the docs for the architecture; the names below are the public
contract.
"""

from __future__ import annotations

from .client import Client, ClientStatistics
from .errors import (
    AmbiguousSubmitError,
    APIError,
    AuthenticationError,
    BatchDownloadError,
    BatchSubmitError,
    ClientStateError,
    CometRunwayError,
    DecodeError,
    DownloadError,
    DownloadInterrupted,
    EndpointError,
    InvalidRequestError,
    JournalError,
    OutputExpired,
    OutputRejected,
    RateLimitError,
    ServerError,
    TaskFailed,
    TaskNotFound,
    TransportError,
)
from .events import (
    AmbiguousSubmit,
    BatchTally,
    Event,
    StatusChanged,
    SubmitRejected,
    Submitted,
    TaskFinished,
    TaskLost,
)
from .handles import TaskHandle
from .models import (
    ActOne,
    ContentModeration,
    ImageToVideo,
    MediaInput,
    MotionVector,
    PromptFrame,
    ReferenceImage,
    RunwayCharacterPerformance,
    RunwayImageToVideo,
    RunwayTextToImage,
    RunwayVideoToVideo,
    RunwayVideoUpscale,
    Task,
    TaskStatus,
    TextToVideo,
    VideoReference,
    VideoToVideo,
)
from .policies import PollPolicy, RetryPolicy

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it

__all__ = [
    "APIError",
    "ActOne",
    "AmbiguousSubmit",
    "AmbiguousSubmitError",
    "AuthenticationError",
    "BatchDownloadError",
    "BatchSubmitError",
    "BatchTally",
    "Client",
    "ClientStateError",
    "ClientStatistics",
    "CometRunwayError",
    "ContentModeration",
    "DecodeError",
    "DownloadError",
    "DownloadInterrupted",
    "EndpointError",
    "Event",
    "ImageToVideo",
    "InvalidRequestError",
    "JournalError",
    "MediaInput",
    "MotionVector",
    "OutputExpired",
    "OutputRejected",
    "PollPolicy",
    "PromptFrame",
    "RateLimitError",
    "ReferenceImage",
    "RetryPolicy",
    "RunwayCharacterPerformance",
    "RunwayImageToVideo",
    "RunwayTextToImage",
    "RunwayVideoToVideo",
    "RunwayVideoUpscale",
    "ServerError",
    "StatusChanged",
    "SubmitRejected",
    "Submitted",
    "Task",
    "TaskFailed",
    "TaskFinished",
    "TaskHandle",
    "TaskLost",
    "TaskNotFound",
    "TaskStatus",
    "TextToVideo",
    "TransportError",
    "VideoReference",
    "VideoToVideo",
]
