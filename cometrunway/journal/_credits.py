"""Credits into the journal, for every store: the new keywords only where they are taken.

Both built-in stores' ``record_status`` take ``estimated_cost`` and ``cost`` (credits, wire
§8.2); the ``Journal`` protocol does not ask for them, so a store without them keeps
working: the client asks :func:`status_keywords` for what to pass, which is nothing for
such a store (its rows simply keep no credits). The answer is worked out once per store
class.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from ..errors import JournalError
from ._rows import Journal

__all__ = ["record_credits", "status_keywords", "takes_credits"]

log: logging.Logger = logging.getLogger("cometrunway")

_CREDIT_KEYWORDS = ("estimated_cost", "cost")
_TAKES_CREDITS: dict[type[Any], bool] = {}


def takes_credits(journal: Journal) -> bool:
    """Whether ``journal.record_status`` accepts ``estimated_cost`` and ``cost``."""
    kind = type(journal)
    known = _TAKES_CREDITS.get(kind)
    if known is None:
        known = _TAKES_CREDITS[kind] = _accepts(journal.record_status, _CREDIT_KEYWORDS)
    return known


def _accepts(method: Any, names: tuple[str, ...]) -> bool:
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):  # no signature to read: pass nothing new
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return True
    return all(
        name in parameters
        and parameters[name].kind
        in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for name in names
    )


def status_keywords(
    journal: Journal, *, estimated_cost: float | None, cost: float | None
) -> dict[str, float]:
    """The credit keywords to pass to ``journal.record_status``: the figures the server
    said, and none at all to a store that does not take them."""
    if (estimated_cost is None and cost is None) or not takes_credits(journal):
        return {}
    found = {"estimated_cost": estimated_cost, "cost": cost}
    return {name: value for name, value in found.items() if value is not None}


async def record_credits(
    journal: Journal, task_id: str, *, status: str, estimated_cost: float
) -> None:
    """Journal the create answer's estimate of a task just created, with the ``status``
    that answer gave it.

    The task id is journaled already; a failure here costs the row its estimate only, so it
    is logged and goes no further (the caller still gets its handle).
    """
    keywords = status_keywords(journal, estimated_cost=estimated_cost, cost=None)
    if not keywords:
        return
    try:
        await journal.record_status(
            task_id,
            status=status,
            progress=None,
            outputs=(),
            error=None,
            error_code=None,
            terminal=False,
            **keywords,
        )
    except JournalError as exc:
        log.warning("task %s: could not journal the create's estimate: %s", task_id, exc)
