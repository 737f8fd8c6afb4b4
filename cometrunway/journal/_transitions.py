"""The journal's state machine as data: one table, from which guards and refusals come.

Each create request gets a row, keyed by its idempotency key, *before* its bytes leave; the
row then follows the request through its states::

    QUEUED ──send──► SENDING ──submitted──► SUBMITTED ──(terminal outcome)──► DONE
      ▲                 │  ╲                    ▲  ╰─◄─reopen (NOT_FOUND)─────┘
      │                 │   ╲reject──► REJECTED (safe to send again)
      │                 ╰──ambiguous──► AMBIGUOUS
      │                                     │
      ╰──────── release (resubmit on purpose) ┤
                       attach (the id the user found) ──► SUBMITTED

Only QUEUED and REJECTED rows may be sent. A SENDING row means the request may have reached
the server: if the process dies there, the next run lists it as ambiguous and never re-sends
it on its own, because that could pay for the same generation twice. Recording a task id is
allowed from every state without one, because losing an id is worse than any bookkeeping.
A DONE row is final except when its outcome is NOT_FOUND: the server said ``task_not_exist``
past the grace window, which may be a server's hiccup rather than the truth, so a later
status for that task (a poll that sees it, or ``track()`` of its id) reopens the row.

The whole table, as :func:`render_table` prints it (a test keeps the two equal)::

    action     from                                   to
    send       queued, rejected                       sending
    submitted  queued, sending, ambiguous, rejected   submitted
    attach     queued, sending, ambiguous, rejected   submitted
    ambiguous  queued, sending, ambiguous, rejected   ambiguous
    reject     queued, sending, rejected              rejected
    release    queued, sending, ambiguous, rejected   queued
    progress   submitted                              submitted
    finish     submitted, done                        done
    reopen     done (NOT_FOUND)                       submitted

A store applies a transition with :func:`guard` (the SQL condition on ``state``) and, when no
row matched, explains why with :func:`refusal`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

import attrs

from ..errors import JournalError
from ._rows import EntryState, Outcome

__all__ = [
    "FOLLOWABLE",
    "TRANSITIONS",
    "Action",
    "Transition",
    "guard",
    "refusal",
    "render_table",
]

S = EntryState


class Action(enum.StrEnum):
    """What happens to a row; each one is a :class:`Transition` in :data:`TRANSITIONS`."""

    SEND = "send"
    SUBMITTED = "submitted"
    ATTACH = "attach"
    AMBIGUOUS = "ambiguous"
    REJECT = "reject"
    RELEASE = "release"
    PROGRESS = "progress"
    FINISH = "finish"
    REOPEN = "reopen"


@attrs.frozen
class Transition:
    """``action`` moves a row in one of ``sources`` to ``target``; ``verb`` names it in errors.

    ``outcomes``, when set, narrows a DONE source to the rows that ended with one of these
    outcomes (the row's ``status``); it is part of the guard like the states are.
    """

    action: Action
    sources: frozenset[EntryState]
    target: EntryState
    verb: str
    outcomes: frozenset[Outcome] | None = None

    def accepts(self, state: EntryState, status: str | None) -> bool:
        """Whether a row in ``state`` with ``status`` may take this transition."""
        if state not in self.sources:
            return False
        if self.outcomes is None or state is not S.DONE:
            return True
        return status in {o.value for o in self.outcomes}

    def describe_sources(self) -> str:
        """The sources as the table shows them: ``done (NOT_FOUND)`` for a narrowed DONE."""
        names = []
        for state in _ordered(self.sources):
            name = state.value
            if state is S.DONE and self.outcomes is not None:
                name += f" ({', '.join(sorted(o.value for o in self.outcomes))})"
            names.append(name)
        return ", ".join(names)


_NO_TASK_YET: Final = frozenset({S.QUEUED, S.SENDING, S.AMBIGUOUS, S.REJECTED})

TRANSITIONS: Final[Mapping[Action, Transition]] = {
    t.action: t
    for t in (
        Transition(Action.SEND, frozenset({S.QUEUED, S.REJECTED}), S.SENDING, "send"),
        Transition(Action.SUBMITTED, _NO_TASK_YET, S.SUBMITTED, "mark submitted"),
        Transition(Action.ATTACH, _NO_TASK_YET, S.SUBMITTED, "attach a task to"),
        Transition(Action.AMBIGUOUS, _NO_TASK_YET, S.AMBIGUOUS, "mark ambiguous"),
        # Not from AMBIGUOUS: an ambiguous create may still exist, whatever a later attempt
        # hears; release() it first.
        Transition(
            Action.REJECT, frozenset({S.QUEUED, S.SENDING, S.REJECTED}), S.REJECTED, "mark rejected"
        ),
        Transition(Action.RELEASE, _NO_TASK_YET, S.QUEUED, "release"),
        Transition(Action.PROGRESS, frozenset({S.SUBMITTED}), S.SUBMITTED, "record progress of"),
        # A DONE row takes another terminal report (a late, fuller answer), never progress.
        Transition(Action.FINISH, frozenset({S.SUBMITTED, S.DONE}), S.DONE, "finish"),
        # NOT_FOUND is the one outcome the server may take back: a task it did not know
        # past the grace window can show up later (wire §1.5, §8.4), and its id was paid for.
        Transition(
            Action.REOPEN,
            frozenset({S.DONE}),
            S.SUBMITTED,
            "reopen",
            outcomes=frozenset({Outcome.NOT_FOUND}),
        ),
    )
}

# Why a row in each state refuses an action (the table says which states would accept it).
_WHY: Final[Mapping[EntryState, str]] = {
    S.SENDING: "its create may already have reached the server; settle it first: "
    "attach_task() with the task id you found, or release() to resubmit on purpose",
    S.AMBIGUOUS: "its create may have reached the server; settle it first: attach_task() "
    "with the task id you found, or release() to resubmit on purpose",
    S.SUBMITTED: "it already has task {task_id}",
    S.DONE: "it already has task {task_id}, which has finished",
    S.QUEUED: "it has not been sent",
    S.REJECTED: "the server refused it, so no task exists",
}


def guard(action: Action) -> str:
    """The SQL condition a row must meet for ``action``: ``state IN (...)``.

    The values are this module's own enum members, never user input.
    """
    return _GUARDS[action]


def _guard_of(transition: Transition) -> str:
    states = ", ".join(f"'{s.value}'" for s in _ordered(transition.sources))
    if transition.outcomes is None:
        return f"state IN ({states})"
    outcomes = ", ".join(f"'{o.value}'" for o in sorted(transition.outcomes))
    if transition.sources == {S.DONE}:
        return f"(state IN ({states}) AND status IN ({outcomes}))"
    others = ", ".join(f"'{s.value}'" for s in _ordered(transition.sources - {S.DONE}))
    return f"(state IN ({others}) OR (state = 'done' AND status IN ({outcomes})))"


def allows(action: Action, state: EntryState, status: str | None = None) -> bool:
    return TRANSITIONS[action].accepts(state, status)


def refusal(
    action: Action, *, key: str, state: EntryState, task_id: str | None, where: str
) -> JournalError:
    """The error for ``action`` refused on a row in ``state`` (which it does not accept)."""
    transition = TRANSITIONS[action]
    why = _WHY[state].format(task_id=task_id)
    if action is Action.SEND and state in (S.SUBMITTED, S.DONE):
        why += "; sending it again would pay twice"
    accepted = transition.describe_sources()
    return JournalError(
        f"journal {where}: cannot {transition.verb} {key!r} (state {state}): {why} "
        f"(only {accepted} rows can be)"
    )


def render_table() -> str:
    """The table as the module docstring shows it: one line per action."""
    lines = [f"{'action':<10} {'from':<38} to"]
    for transition in TRANSITIONS.values():
        sources = transition.describe_sources()
        lines.append(f"{transition.action.value:<10} {sources:<38} {transition.target.value}")
    return "\n".join(lines)


def _ordered(states: frozenset[EntryState]) -> list[EntryState]:
    order = list(EntryState)
    return sorted(states, key=order.index)


# Built once: stores put these into statements on every transition.
_GUARDS: Final[Mapping[Action, str]] = {a: _guard_of(t) for a, t in TRANSITIONS.items()}

#: The rows ``unfinished()`` lists, as an SQL condition: those a poll may still move (a
#: SUBMITTED task in progress, or a NOT_FOUND one the server may know now).
FOLLOWABLE: Final = f"({_GUARDS[Action.PROGRESS]} OR {_GUARDS[Action.REOPEN]})"
