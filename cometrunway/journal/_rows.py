"""The journal's vocabulary: row states, terminal outcomes, rows, and the store protocols.

:class:`Journal` is what the client calls (plus :meth:`Journal.entries` for the CLI); every
store implements it and passes the conformance suite (``tests/journal_conformance.py``).
:class:`JournalAdmin` holds the extra queries of the SQLite store that tools and tests use.
"""

from __future__ import annotations

import enum
from typing import Final, Protocol, runtime_checkable

import attrs

__all__ = [
    "POLL_ROUTES",
    "CancelRecorder",
    "EntryState",
    "Journal",
    "JournalAdmin",
    "JournalEntry",
    "Outcome",
]

POLL_ROUTES: Final = frozenset({"feed", "tasks"})


class EntryState(enum.StrEnum):
    """Where one journaled create request stands."""

    QUEUED = "queued"
    """Recorded, not yet sent: safe to send later."""
    SENDING = "sending"
    """The create's bytes may have left: never resent automatically."""
    SUBMITTED = "submitted"
    """The task id is known; the task is being polled."""
    AMBIGUOUS = "ambiguous"
    """The create may have reached the server; the outcome is unknown."""
    REJECTED = "rejected"
    """The server refused the create (no task exists); ``error`` says why. Safe to retry."""
    DONE = "done"
    """The task reached a terminal outcome (see :class:`Outcome` and ``status``); only a
    NOT_FOUND one is reopened, by a later status of the task or by ``track()``."""


class Outcome(enum.StrEnum):
    """How a task ended: the ``status`` of a DONE row, shared by the client and the CLI."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    NOT_FOUND = "NOT_FOUND"
    """The server kept answering ``task_not_exist`` past the grace window. Not final:
    ``resume()`` follows such a task again, and a status seen for it reopens the row."""
    LOST = "LOST"
    """Followed no further for another reason (see ``error``)."""


@attrs.frozen
class JournalEntry:
    """One row of the journal: a create request and what became of it.

    ``body`` is the canonical JSON of the wire body (without ``callback_url``), so the
    request can be sent again. A row made by :meth:`Journal.track` follows a task created
    elsewhere: its key is ``"task:{task_id}"`` and ``request_type``, ``path`` and ``body``
    are empty strings.

    ``estimated_cost`` and ``cost`` are credits as the server said them (Runway's
    ``estimatedCost`` from the create answer or a poll, and ``cost`` once the task ended;
    wire §8.2); None when it never said. ``cancel_requested_at`` is when a cancel of the
    task was first asked for (unix seconds), else None; the task's end is still ``status``.
    """

    key: str
    request_type: str
    path: str
    body: str
    poll_route: str
    state: EntryState
    task_id: str | None
    status: str | None
    progress: float | None
    outputs: tuple[str, ...]
    error: str | None
    error_code: str | None
    created_at: float
    updated_at: float
    submitted_at: float | None
    label: str | None = None
    estimated_cost: float | None = None
    cost: float | None = None
    cancel_requested_at: float | None = None

    @property
    def outcome(self) -> Outcome | None:
        """How the task ended, for a DONE row with a known outcome; else None."""
        status = self.status
        if self.state is not EntryState.DONE or status is None or status not in Outcome.__members__:
            return None
        return Outcome(status)


@runtime_checkable
class Journal(Protocol):
    """The store the client records submissions in: what the client calls, plus ``entries``.

    States and transitions: :mod:`cometrunway.journal._transitions`. A refused transition
    raises :class:`~cometrunway.errors.JournalError` and changes nothing.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def reserve_sending(
        self,
        key: str,
        *,
        request_type: str,
        path: str,
        body: str,
        poll_route: str,
        label: str | None = None,
    ) -> tuple[JournalEntry, bool]:
        """Claim ``key`` and mark it SENDING in one durable step; True: send it now.

        An existing QUEUED/REJECTED row is claimed the same way; any other existing row
        comes back unchanged with False. A row filed under ``key`` for a different request
        (path or body) raises :class:`~cometrunway.errors.JournalKeyConflict`.
        """
        ...

    async def mark_sending(self, key: str) -> None:
        """QUEUED/REJECTED → SENDING, durably, before the create's bytes leave."""
        ...

    async def mark_submitted(self, key: str, task_id: str) -> None:
        """The server accepted the create: → SUBMITTED with ``task_id``, durably on return."""
        ...

    async def mark_ambiguous(self, key: str, error: str) -> None:
        """The create may have reached the server: → AMBIGUOUS."""
        ...

    async def mark_rejected(self, key: str, error: str, error_code: str | None = None) -> None:
        """The server refused the create: → REJECTED (safe to send again later)."""
        ...

    async def record_status(
        self,
        task_id: str,
        *,
        status: str,
        progress: float | None,
        outputs: tuple[str, ...],
        error: str | None,
        error_code: str | None,
        terminal: bool,
    ) -> None:
        """Record a task's latest status; a terminal one (an :class:`Outcome`) → DONE.

        A non-terminal status reopens a DONE row whose outcome is NOT_FOUND (the server
        knows the task after all); any other DONE row takes only another terminal report.

        A store may also take ``estimated_cost`` and ``cost`` keywords (credits, ``float |
        None``; None keeps what the row has), as both built-in stores do: the client passes
        them only to a ``record_status`` that accepts them, so a store written without them
        keeps working and keeps matching this protocol.
        """
        ...

    async def attach_task(self, key: str, task_id: str) -> None:
        """Settle an ambiguous or interrupted row with the task id the user found."""
        ...

    async def release(self, key: str) -> None:
        """Settle an ambiguous or interrupted row by resubmitting on purpose: → QUEUED."""
        ...

    async def track(
        self, task_id: str, *, poll_route: str, label: str | None = None
    ) -> JournalEntry:
        """Follow a task created elsewhere: a SUBMITTED row keyed ``"task:{task_id}"``.

        An id the journal has already comes back as its row; a row that ended NOT_FOUND is
        reopened (SUBMITTED) first, since the caller means to follow it again.
        """
        ...

    async def get(self, key: str) -> JournalEntry | None: ...

    async def unfinished(self) -> list[JournalEntry]:
        """The rows to follow, oldest submission first: SUBMITTED ones (a task id, not yet
        DONE) and DONE ones whose outcome is NOT_FOUND (the server may know them now)."""
        ...

    async def ambiguous(self) -> list[JournalEntry]:
        """AMBIGUOUS rows and SENDING rows no live sender of this store owns."""
        ...

    async def entries(self) -> list[JournalEntry]:
        """Every row, in insertion order."""
        ...


@runtime_checkable
class CancelRecorder(Protocol):
    """A store that records cancel requests (both stores here do; the client calls it when
    a store has it, so a store without it keeps working)."""

    async def record_cancel_request(self, task_id: str) -> None:
        """Note that a cancel of ``task_id`` was asked for (the first time is kept); an id
        without a row is ignored."""
        ...


@runtime_checkable
class JournalAdmin(Protocol):
    """Queries beyond what the client needs: for tools, tests and the SQLite store's users."""

    async def reserve(
        self,
        key: str,
        *,
        request_type: str,
        path: str,
        body: str,
        poll_route: str,
        label: str | None = None,
    ) -> tuple[JournalEntry, bool]:
        """Insert a QUEUED row for ``key``, or return the existing row unchanged."""
        ...

    async def get_by_task(self, task_id: str) -> JournalEntry | None: ...

    async def pending_submits(self) -> list[JournalEntry]:
        """QUEUED and REJECTED rows: requests that may be sent."""
        ...

    async def counts(self) -> dict[str, int]:
        """How many rows are in each state (every state is present, zeros included)."""
        ...


def track_key(task_id: str) -> str:
    """The key of a row that follows a task created elsewhere."""
    return f"task:{task_id}"


def check_task_id(task_id: str) -> None:
    if not isinstance(task_id, str) or not task_id:
        raise ValueError(f"task_id must be a non-empty string, got {task_id!r}")


def check_route(poll_route: str) -> None:
    if poll_route not in POLL_ROUTES:
        raise ValueError(f"poll_route must be 'feed' or 'tasks', got {poll_route!r}")
