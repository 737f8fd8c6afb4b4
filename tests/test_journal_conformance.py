"""The store conformance suite: what every :class:`~cometrunway.journal.Journal` must do.

Parametrised over ``journal_stores.STORE_NAMES`` (SQLite now; a PostgreSQL store is added
as another name there). Only the ``Journal`` protocol is used, so any store can run it:
transitions (against an independent table of expectations), dedupe by key, key conflicts,
durability of ids, crash consistency, concurrent claims from two clients, statuses, and
bulk settling.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from journal_stores import STORE_NAMES, StoreFactory, make_store

from cometrunway.errors import JournalError, JournalKeyConflict
from cometrunway.journal import (
    TRANSITIONS,
    Action,
    EntryState,
    Journal,
    Outcome,
    settle_journal,
)
from cometrunway.journal import _transitions as transitions_module

S = EntryState
PATH = "/runway/pro/generate"
# Enough concurrent claims that two clients interleave within one commit and across several.
CLAIMS = 40


@pytest.fixture(params=STORE_NAMES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return make_store(request.param, tmp_path, url)


@pytest.fixture
async def journal(store: StoreFactory) -> AsyncIterator[Journal]:
    j = store.journal()
    await j.open()
    try:
        yield j
    finally:
        await j.close()


async def claim(j: Journal, key: str, body: str = '{"prompt":"a cat"}', **kw: Any) -> bool:
    args: dict[str, Any] = {"request_type": "TextToVideo", "path": PATH, "poll_route": "feed"}
    args.update(kw)
    return (await j.reserve_sending(key, body=body, **args))[1]


async def finish(j: Journal, task_id: str, outcome: Outcome, **kw: Any) -> None:
    args: dict[str, Any] = {"progress": None, "outputs": (), "error": None, "error_code": None}
    args.update(kw)
    await j.record_status(task_id, status=outcome.value, terminal=True, **args)


async def put_in_state(j: Journal, key: str, state: EntryState) -> None:
    """Drive a fresh row there through the protocol only."""
    assert await claim(j, key)
    if state is S.QUEUED:
        await j.release(key)
    elif state is S.AMBIGUOUS:
        await j.mark_ambiguous(key, "read timeout")
    elif state is S.REJECTED:
        await j.mark_rejected(key, "HTTP 400 bad ratio", "invalid_request")
    elif state in (S.SUBMITTED, S.DONE):
        await j.mark_submitted(key, f"task-{key}")
        if state is S.DONE:
            await finish(j, f"task-{key}", Outcome.SUCCEEDED, outputs=("https://v/1.mp4",))


async def state_of(j: Journal, key: str) -> EntryState:
    entry = await j.get(key)
    assert entry is not None
    return entry.state


# ---------------------------------------------------------------- the table itself

# Written out by hand, independently of the table: (method, from) -> to, or None (refused).
EXPECTED: dict[str, dict[EntryState, EntryState | None]] = {
    "mark_sending": {S.QUEUED: S.SENDING, S.REJECTED: S.SENDING},
    "mark_submitted": dict.fromkeys((S.QUEUED, S.SENDING, S.AMBIGUOUS, S.REJECTED), S.SUBMITTED),
    "attach_task": dict.fromkeys((S.QUEUED, S.SENDING, S.AMBIGUOUS, S.REJECTED), S.SUBMITTED),
    "mark_ambiguous": dict.fromkeys((S.QUEUED, S.SENDING, S.AMBIGUOUS, S.REJECTED), S.AMBIGUOUS),
    "mark_rejected": {S.QUEUED: S.REJECTED, S.SENDING: S.REJECTED, S.REJECTED: S.REJECTED},
    "release": dict.fromkeys((S.QUEUED, S.SENDING, S.AMBIGUOUS, S.REJECTED), S.QUEUED),
}
METHOD_ACTIONS = {
    "mark_sending": Action.SEND,
    "mark_submitted": Action.SUBMITTED,
    "attach_task": Action.ATTACH,
    "mark_ambiguous": Action.AMBIGUOUS,
    "mark_rejected": Action.REJECT,
    "release": Action.RELEASE,
}
CASES = [(m, s, EXPECTED[m].get(s)) for m in EXPECTED for s in EntryState]


def call(j: Journal, method: str, key: str) -> Awaitable[None]:
    calls: dict[str, Callable[[], Awaitable[None]]] = {
        "mark_sending": lambda: j.mark_sending(key),
        "mark_submitted": lambda: j.mark_submitted(key, "another-task"),
        "attach_task": lambda: j.attach_task(key, "another-task"),
        "mark_ambiguous": lambda: j.mark_ambiguous(key, "disconnected after send"),
        "mark_rejected": lambda: j.mark_rejected(key, "HTTP 422", "invalid_request"),
        "release": lambda: j.release(key),
    }
    return calls[method]()


def test_the_table_matches_the_expectations() -> None:
    for method, action in METHOD_ACTIONS.items():
        transition = TRANSITIONS[action]
        assert transition.sources == set(EXPECTED[method]), method
        assert {transition.target} == set(EXPECTED[method].values()), method
    assert TRANSITIONS[Action.FINISH].sources == {S.SUBMITTED, S.DONE}
    assert TRANSITIONS[Action.PROGRESS].sources == {S.SUBMITTED}


def test_the_rendered_table_is_the_docstring_diagram() -> None:
    doc = transitions_module.__doc__ or ""
    block = doc.split("The whole table, as :func:`render_table` prints it (a test keeps the")[1]
    block = block.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    assert textwrap.dedent(block) == transitions_module.render_table()


def test_every_refusal_names_the_key_the_state_and_what_would_be_accepted() -> None:
    for action, transition in TRANSITIONS.items():
        for state in set(EntryState) - transition.sources:
            error = transitions_module.refusal(
                action, key="k", state=state, task_id="t-1", where="here"
            )
            text = str(error)
            assert f"cannot {transition.verb} 'k' (state {state})" in text
            assert all(s.value in text.rsplit("(only", 1)[1] for s in transition.sources)


def test_guards_are_generated_from_the_table() -> None:
    assert transitions_module.guard(Action.SEND) == "state IN ('queued', 'rejected')"
    assert transitions_module.guard(Action.FINISH) == "state IN ('submitted', 'done')"


# ---------------------------------------------------------------- transitions on a store


@pytest.mark.parametrize(("method", "start", "expected"), CASES, ids=str)
async def test_transition(
    journal: Journal, method: str, start: EntryState, expected: EntryState | None
) -> None:
    await put_in_state(journal, "k", start)
    before = await journal.get("k")
    if expected is None:
        with pytest.raises(JournalError, match=r"cannot .* 'k'"):
            await call(journal, method, "k")
        assert await journal.get("k") == before  # a refused transition changes nothing
    else:
        await call(journal, method, "k")
        assert await state_of(journal, "k") == expected


@pytest.mark.parametrize("method", sorted(EXPECTED))
async def test_transition_of_an_unknown_key_says_so(journal: Journal, method: str) -> None:
    with pytest.raises(JournalError, match="no such entry"):
        await call(journal, method, "nobody")


async def test_the_same_task_id_again_is_a_no_op_and_another_names_both(journal: Journal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    await journal.mark_submitted("k", "task-k")
    with pytest.raises(JournalError, match=r"task-k.*t-2|t-2.*task-k"):
        await journal.mark_submitted("k", "t-2")


# ---------------------------------------------------------------- dedupe and keys


async def test_a_key_is_claimed_once(journal: Journal) -> None:
    assert await claim(journal, "k")
    assert not await claim(journal, "k")
    await journal.mark_submitted("k", "t-1")
    entry, claimed = await journal.reserve_sending(
        "k", request_type="TextToVideo", path=PATH, body='{"prompt":"a cat"}', poll_route="feed"
    )
    assert not claimed and entry.task_id == "t-1"


async def test_concurrent_claims_of_one_key_give_one_winner(journal: Journal) -> None:
    results = await asyncio.gather(*(claim(journal, "same") for _ in range(CLAIMS)))
    assert sum(results) == 1
    assert [e.key for e in await journal.entries()] == ["same"]


async def test_a_key_filed_for_another_request_is_refused(journal: Journal) -> None:
    await put_in_state(journal, "fox", S.SUBMITTED)
    with pytest.raises(JournalKeyConflict) as info:
        await claim(journal, "fox", body='{"promptText":"a blue whale"}', path="/runwayml/v1/x")
    assert (info.value.key, info.value.journaled_path) == ("fox", PATH)
    assert info.value.requested_path == "/runwayml/v1/x"
    assert (await journal.get("fox")) is not None
    assert [e.task_id for e in await journal.entries()] == ["task-fox"]


# ---------------------------------------------------------------- durability and crashes


async def test_ids_survive_a_crash(store: StoreFactory) -> None:
    first = store.journal()
    await first.open()
    await put_in_state(first, "a", S.SUBMITTED)
    await put_in_state(first, "b", S.DONE)
    await store.crash(first)
    second = store.journal()
    await second.open()
    try:
        assert [e.task_id for e in await second.unfinished()] == ["task-a"]
        done = await second.get("b")
        assert done is not None and done.outcome is Outcome.SUCCEEDED
    finally:
        await second.close()


async def test_a_send_a_crash_interrupted_is_ambiguous_and_never_claimed_again(
    store: StoreFactory,
) -> None:
    first = store.journal()
    await first.open()
    assert await claim(first, "in-flight")
    assert await first.ambiguous() == []  # its own send in flight is not "ambiguous"
    await store.crash(first)
    second = store.journal()
    await second.open()
    try:
        assert [e.key for e in await second.ambiguous()] == ["in-flight"]
        assert not await claim(second, "in-flight")  # sending it again could pay twice
        assert await second.unfinished() == []
    finally:
        await second.close()


async def test_two_clients_claim_each_key_once(store: StoreFactory) -> None:
    one, two = store.journal(), store.journal()
    await one.open()
    await two.open()
    try:
        keys = [f"k{i}" for i in range(CLAIMS)]
        wins = await asyncio.gather(
            *(claim(j, key) for key in keys for j in (one, two)), return_exceptions=True
        )
        assert not [w for w in wins if isinstance(w, BaseException)]
        by_key = [wins[2 * i] + wins[2 * i + 1] for i in range(len(keys))]  # type: ignore[operator]
        assert by_key == [1] * len(keys)
        assert {e.key for e in await one.entries()} == set(keys)
    finally:
        await one.close()
        await two.close()


# ---------------------------------------------------------------- statuses and tracking


async def test_terminal_status_finishes_and_a_stale_one_is_ignored(journal: Journal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    await finish(journal, "task-k", Outcome.FAILED, error="moderation", error_code="SAFETY")
    await journal.record_status(
        "task-k",
        status="RUNNING",
        progress=0.5,
        outputs=(),
        error=None,
        error_code=None,
        terminal=False,
    )
    entry = await journal.get("k")
    assert entry is not None
    assert (entry.state, entry.outcome, entry.error) == (S.DONE, Outcome.FAILED, "moderation")


async def test_a_terminal_status_must_be_an_outcome(journal: Journal) -> None:
    await put_in_state(journal, "k", S.SUBMITTED)
    with pytest.raises(ValueError, match="Outcome"):
        await journal.record_status(
            "task-k",
            status="RUNNING",
            progress=None,
            outputs=(),
            error=None,
            error_code=None,
            terminal=True,
        )


async def test_an_unknown_task_status_is_ignored(journal: Journal) -> None:
    await finish(journal, "nobody", Outcome.SUCCEEDED)
    assert await journal.entries() == []


async def test_track_follows_an_id_made_elsewhere(journal: Journal) -> None:
    entry = await journal.track("t-9", poll_route="tasks", label="found")
    assert (entry.state, entry.task_id, entry.poll_route) == (S.SUBMITTED, "t-9", "tasks")
    assert [e.task_id for e in await journal.unfinished()] == ["t-9"]
    assert (await journal.track("t-9", poll_route="tasks")).key == entry.key


# ---------------------------------------------------------------- settling many


async def test_settling_needs_an_explicit_choice(journal: Journal) -> None:
    await put_in_state(journal, "k", S.AMBIGUOUS)
    with pytest.raises(ValueError, match="explicit choice"):
        await settle_journal(journal)
    assert await state_of(journal, "k") is S.AMBIGUOUS


async def test_settle_attaches_found_ids_and_resubmits_the_rest_on_purpose(
    journal: Journal,
) -> None:
    for key in ("a", "b", "c"):
        await put_in_state(journal, key, S.AMBIGUOUS)
    report = await settle_journal(journal, task_ids={"a": "t-a"})
    assert report.attached == (("a", "t-a", "feed"),)
    assert (report.released, report.left) == ((), ("b", "c"))
    report = await settle_journal(journal, resubmit=True)
    assert report.released == ("b", "c")
    assert [await state_of(journal, k) for k in "abc"] == [S.SUBMITTED, S.QUEUED, S.QUEUED]


async def test_settle_checks_everything_before_changing_anything(journal: Journal) -> None:
    await put_in_state(journal, "a", S.AMBIGUOUS)
    await put_in_state(journal, "done", S.SUBMITTED)
    with pytest.raises(ValueError, match=r"'done' is submitted.*'missing': no such row"):
        await settle_journal(journal, task_ids={"a": "t-a", "done": "t-x", "missing": "t-y"})
    with pytest.raises(ValueError, match="given for both"):
        await settle_journal(journal, task_ids={"a": "t-1", "done": "t-1"})
    assert await state_of(journal, "a") is S.AMBIGUOUS
