"""Every error cometrunway raises, in one tree.

::

    CometRunwayError
    ├── APIError(status, code, message, body)  the server answered, and said no
    │   ├── InvalidRequestError                400/413/422, 500 ``invalid_request``: fix it
    │   ├── AuthenticationError                401/403: key wrong or out of quota; base URL
    │   ├── TaskNotFound(task_id)              ``task_not_exist`` (also a ``LookupError``)
    │   ├── EndpointError                      HTML page or redirect: wrong path or base URL
    │   ├── RateLimitError(retry_after)        429
    │   └── ServerError                        5xx
    ├── TransportError(request_sent)           no usable answer (also ``ConnectionError``)
    ├── DecodeError                            an answer we cannot read (also ``ValueError``)
    ├── AmbiguousSubmitError(request)          a create that may have reached the server
    ├── TaskFailed(task)                       the remote task ended FAILED or CANCELLED
    ├── CancelNotSupported(task_id)            no cancel route for this task on this server
    ├── ClientStateError                       used outside its lifecycle (``RuntimeError``)
    ├── JournalError                           journal file corrupt, foreign or newer
    │   ├── JournalKeyConflict(key)            a key already journaled for another request
    │   └── UnjournaledTask(task_id, key)      created, but the journal could not record it
    ├── DownloadError                          an output could not be downloaded
    │   ├── OutputExpired                      URL expired even after re-polling (also APIError)
    │   ├── OutputRejected                     the output host refused (also APIError)
    │   └── DownloadInterrupted                transfer kept failing (also TransportError)
    ├── BatchSubmitError(handles)              part of a batch failed (``ExceptionGroup``)
    └── BatchDownloadError(paths)              part of download_many failed (``ExceptionGroup``)

What to catch:

* ``TaskFailed`` — the generation itself failed (moderation, provider error). ``.task``
  says why; the money is usually refunded upstream.
* ``AmbiguousSubmitError`` — a create may have been accepted. Never resubmit it blindly:
  find the task, or resubmit on purpose (see the journal).
* ``APIError`` — anything the server refused; ``.status``, ``.code`` and ``.message`` say
  what. ``TransportError`` and ``ServerError`` are usually worth a later retry.

At run time this module imports nothing from the package, so every layer can raise from
it; the types its attributes name are imported for type checkers only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from pathlib import Path

    from .handles import TaskHandle
    from .models import Request, Task

__all__ = [
    "APIError",
    "AmbiguousSubmitError",
    "AuthenticationError",
    "BatchDownloadError",
    "BatchSubmitError",
    "CancelNotSupported",
    "ClientStateError",
    "CometRunwayError",
    "DecodeError",
    "DownloadError",
    "DownloadInterrupted",
    "EndpointError",
    "InvalidRequestError",
    "JournalError",
    "JournalKeyConflict",
    "OutputExpired",
    "OutputRejected",
    "RateLimitError",
    "ServerError",
    "TaskFailed",
    "TaskNotFound",
    "TransportError",
    "UnjournaledTask",
]

_BODY_EXCERPT = 300


def _excerpt(body: bytes | str | None) -> str:
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "…"


def _restore(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    error = cls.__new__(cls, *args)
    error.args = args  # OSError.__new__ leaves args to __init__ when a subclass has one
    return error


class CometRunwayError(Exception):
    """Base class of every error this package raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor arguments live in the instance dict, not in ``args``:
        # rebuild without calling ``__init__`` so every error survives pickling (process
        # pools, multi-worker journals) with all its attributes.
        return (_restore, (type(self), self.args), self.__dict__)


class APIError(CometRunwayError):
    """The server answered with an error.

    ``status`` is the HTTP status (or the business code a 200 body carried), ``code`` the
    error token when the body had one (``"invalid_request"``, ``"task_not_exist"``),
    ``message`` the human text, ``body`` the raw bytes of the answer.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        body: bytes | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        super().__init__(message)

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        return f"HTTP {self.status}{code}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r})"
        )


class InvalidRequestError(APIError):
    """The server rejected the request itself (400, 422, or 500 ``invalid_request``)."""


class AuthenticationError(APIError):
    """401/403: the key is missing, invalid, blocked or out of quota.

    CometAPI answers "invalid token" for a wrong base URL too; check both.
    """


class TaskNotFound(APIError, LookupError):
    """The server does not know this task id (``task_not_exist``).

    Right after a create this is normal for a while (see :doc:`/quirks`); the poller only
    raises it once ``PollPolicy.not_found_grace`` has passed since the submit.
    """

    def __init__(
        self,
        message: str,
        *,
        task_id: str | None = None,
        status: int = 400,
        code: str | None = "task_not_exist",
        body: bytes | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, body=body)
        self.task_id = task_id


class EndpointError(APIError):
    """The answer was an HTML page or a redirect, not the API: a wrong path or base URL."""


class RateLimitError(APIError):
    """429. ``retry_after`` is the server's wait in seconds, when it said one."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 429,
        code: str | None = None,
        body: bytes | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, body=body)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx from CometAPI or the provider behind it."""


class TransportError(CometRunwayError, ConnectionError):
    """No usable answer: connect failure, timeout, dropped connection.

    ``request_sent`` is False only when the request certainly never left (DNS or connect
    failure); True means the server may have received and acted on it.
    """

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class DecodeError(CometRunwayError, ValueError):
    """The answer could not be read as any documented shape."""

    def __init__(self, message: str, *, body: bytes | None = None) -> None:
        excerpt = _excerpt(body)
        super().__init__(f"{message} (body: {excerpt!r})" if body is not None else message)
        self.body = body


class AmbiguousSubmitError(CometRunwayError):
    """A create request may have reached the server, and its outcome is unknown.

    The client never retries it: doing so could pay for the same generation twice. ``request``
    is the request model, ``__cause__`` the underlying failure. With a journal the row is kept
    as ambiguous until settled (``Client.ambiguous()``).
    """

    request: Request
    key: str | None

    def __init__(self, message: str, *, request: Request, key: str | None = None) -> None:
        super().__init__(message)
        self.request = request
        self.key = key


class TaskFailed(CometRunwayError):
    """The remote task ended FAILED or CANCELLED; ``task`` is its last snapshot."""

    task: Task

    def __init__(self, task: Task) -> None:
        self.task = task
        # getattr: the message must not fail whatever a caller passed as the task.
        reason = getattr(task, "error", None) or "no reason given"
        code = getattr(task, "error_code", None)
        status = getattr(getattr(task, "status", None), "value", "failed")
        detail = f"{reason} [{code}]" if code else reason
        super().__init__(f"task {getattr(task, 'task_id', '?')} {status.lower()}: {detail}")


class CancelNotSupported(CometRunwayError):
    """This task cannot be cancelled here: the server answered the cancel with 404/405
    (CometAPI does not document ``DELETE /runwayml/v1/tasks/{id}``, wire §8.6), or the task
    is a ``/runway/pro/*`` one, which has no cancel route at all. The task is still
    followed (and may still cost money); ``status`` is the HTTP status, None if nothing was
    sent."""

    def __init__(self, message: str, *, task_id: str, status: int | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.status = status


class ClientStateError(CometRunwayError, RuntimeError):
    """The client was used outside its lifecycle (before open, after close, reopened)."""


class JournalError(CometRunwayError):
    """The journal store cannot be used: corrupt, not a journal, or a newer schema."""


class UnjournaledTask(JournalError):
    """A create succeeded but the journal could not record its task id (disk full, I/O).

    The task exists and may cost money: ``task_id`` is its id (follow it with
    ``client.track(task_id)``), ``key`` the journal key whose row still says "sending",
    and ``__cause__`` the journal's own error (set by the client where it is raised).
    """

    def __init__(self, task_id: str, key: str, cause: JournalError) -> None:
        super().__init__(
            f"task {task_id} was created (journal key {key!r}) but the journal could not "
            f"record it: {cause}; follow it with client.track({task_id!r})"
        )
        self.task_id = task_id
        self.key = key


class JournalKeyConflict(JournalError):
    """A journal key is already filed for a different request body: never silently reused.

    ``key`` is the key; ``journaled_path`` and ``requested_path`` are the routes of the
    request on file and of the one refused.
    """

    def __init__(self, message: str, *, key: str, journaled_path: str, requested_path: str) -> None:
        super().__init__(message)
        self.key = key
        self.journaled_path = journaled_path
        self.requested_path = requested_path


class _PartialBatch(ExceptionGroup[Exception], CometRunwayError):
    """A batch operation in which some inputs failed; ``results`` has one entry per input."""

    results: tuple[Any, ...]

    def __new__(
        cls, message: str, exceptions: Sequence[Exception], results: Sequence[Any] = ()
    ) -> Self:
        self = super().__new__(cls, message, exceptions)
        self.results = tuple(results)
        return self

    def __init__(
        self, message: str, exceptions: Sequence[Exception], results: Sequence[Any] = ()
    ) -> None:
        super().__init__(message, exceptions)

    def derive(self, excs: Sequence[Exception]) -> Self:  # type: ignore[override]
        return type(self)(self.message, excs, self.results)


class BatchSubmitError(_PartialBatch):
    """Some requests of ``submit_many`` failed; every request was still attempted.

    ``handles`` has one entry per input, in input order: the ``TaskHandle`` of a created (or
    already journaled) task, or ``None`` where that input failed. Each exception carries
    ``.index``, the input position it belongs to, and says why.
    """

    @property
    def handles(self) -> tuple[TaskHandle | None, ...]:
        """One entry per input: its ``TaskHandle``, or None where that input failed."""
        return self.results


class DownloadError(CometRunwayError):
    """An output could not be downloaded (see the subclasses for why)."""


class OutputExpired(DownloadError, APIError):
    """The output URL was refused as expired (403/404/410), even after re-polling the task
    for a fresh one. Poll the task again (``client.fetch``) later, or regenerate it."""


class OutputRejected(DownloadError, APIError):
    """The output host answered an error that retrying will not fix."""


class DownloadInterrupted(DownloadError, TransportError):
    """The transfer kept failing (connection, timeouts, short bodies, 5xx) after retries."""


class BatchDownloadError(_PartialBatch):
    """Some tasks of ``download_many`` failed; every task was still attempted.

    ``paths`` has one entry per input, in input order: the list of files written, or None
    where that task failed. Each exception carries ``.index``, its input position.
    """

    @property
    def paths(self) -> tuple[list[Path] | None, ...]:
        """One entry per input: the files written for it, or None where it failed."""
        return self.results
