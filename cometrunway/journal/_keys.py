"""Journal keys name one request each: a key filed for another request is a conflict.

The store refuses such a reuse when it is asked to file the request (never a silent reuse
of the other request's task); :func:`find_conflicts` checks a whole batch up front, so a
tool can refuse bad input before anything is sent. :func:`request_key` computes a create's
key from the request that is sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import attrs

from ..errors import JournalKeyConflict
from ..protocol import HTTPRequest
from ._rows import Journal, JournalEntry

__all__ = ["Filing", "find_conflicts", "key_conflict", "request_key"]


@attrs.frozen
class Filing:
    """A request as the journal files it: its key, type, route and canonical body."""

    key: str
    request_type: str
    path: str
    body: str

    def conflicts_with(self, entry: JournalEntry) -> bool:
        return (entry.path, entry.body) != (self.path, self.body)


def key_conflict(where: str, filing: Filing, existing: JournalEntry) -> JournalKeyConflict:
    """The error for ``filing`` under a key ``existing`` already holds for another request."""
    held = f"{existing.request_type} to {existing.path}" if existing.path else "a tracked task"
    return JournalKeyConflict(
        f"journal {where}: key {filing.key!r} is already filed for another request ({held}), "
        f"not this {filing.request_type} to {filing.path} with a different body; a key names "
        "one request: give this one a key of its own (or none, to key it by its body)",
        key=filing.key,
        journaled_path=existing.path,
        requested_path=filing.path,
    )


async def find_conflicts(
    journal: Journal, filings: Iterable[Filing], *, where: str
) -> list[JournalKeyConflict]:
    """Every filing whose key the journal holds for another request (nothing is written)."""
    conflicts = []
    for filing in filings:
        existing = await journal.get(filing.key)
        if existing is not None and filing.conflicts_with(existing):
            conflicts.append(key_conflict(where, filing, existing))
    return conflicts


def request_key(request: HTTPRequest) -> tuple[str, str]:
    """``(idempotency key, canonical body)`` of a create request.

    The key is a hash of the route and the canonical JSON body without ``callback_url``
    (which carries a per-client secret), so the same generation asked twice has one key.
    """
    body = request.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "callback_url"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(f"{request.path}\n{canonical}".encode()).hexdigest()
    return f"sha256:{digest[:40]}", canonical
