"""Key conflicts and bulk settling, from the library and from the command line.

The CLI runs in this process (``cometrunway.cli.main``) on the embedded fake (``--fake``);
journals are prepared and inspected with :class:`~cometrunway.journal.SQLiteJournal`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import client_for

from cometrunway import TextToVideo
from cometrunway.cli import main
from cometrunway.cli._common import CliError
from cometrunway.cli._inputs import read_batch
from cometrunway.cli._jobs import jobs_from_items
from cometrunway.errors import JournalError, JournalKeyConflict
from cometrunway.journal import EntryState, JournalEntry, SQLiteJournal
from cometrunway.testing import FakeCometAPI

USAGE = 2
PATH = "/runway/pro/generate"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """``main()`` installs the CLI's log handler on the package logger: take it off again,
    so no later test logs into a closed captured stream."""
    logger = logging.getLogger("cometrunway")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


async def make_rows(journal: Path, *, ambiguous: list[str], submitted: dict[str, str]) -> None:
    async with SQLiteJournal(journal) as store:
        for key in [*ambiguous, *submitted]:
            await store.reserve_sending(
                key,
                request_type="TextToVideo",
                path=PATH,
                body=json.dumps({"prompt": f"prompt of {key}"}),
                poll_route="feed",
            )
        for key in ambiguous:
            await store.mark_ambiguous(key, "HTTP 524 after sending")
        for key, task_id in submitted.items():
            await store.mark_submitted(key, task_id)


async def read_rows(journal: Path) -> dict[str, JournalEntry]:
    async with SQLiteJournal(journal) as store:
        return {entry.key: entry for entry in await store.entries()}


def rows(journal: Path) -> dict[str, JournalEntry]:
    return asyncio.run(read_rows(journal))


# ---------------------------------------------------------------- library


async def test_submit_with_a_key_filed_for_another_request_raises(tmp_path: Path) -> None:
    async with FakeCometAPI() as fake, client_for(fake, journal=tmp_path / "j.sqlite") as c:
        fox = await c.submit(TextToVideo("a red fox"), key="animal")
        with pytest.raises(JournalKeyConflict, match="'animal'") as info:
            await c.submit(TextToVideo("a blue whale"), key="animal")
        assert info.value.journaled_path == info.value.requested_path == PATH
        again = await c.submit(TextToVideo("a red fox"), key="animal")
        assert again.task_id == fox.task_id
    assert fake.created_count() == 1


async def test_client_settle_all_needs_a_choice_then_attaches_and_resubmits(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "j.sqlite"
    await make_rows(journal, ambiguous=["a", "b", "c"], submitted={})
    async with FakeCometAPI() as fake:
        async with client_for(fake) as plain:
            found = await plain.submit(TextToVideo("prompt of a"))
        async with client_for(fake, journal=journal) as c:
            with pytest.raises(ValueError, match="explicit choice"):
                await c.settle_all()
            assert len(await c.ambiguous()) == 3
            handles = await c.settle_all(task_ids={"a": found.task_id})
            assert [h.task_id for h in handles] == [found.task_id]
            await handles[0]
            assert [e.key for e in await c.ambiguous()] == ["b", "c"]
            assert await c.settle_all(resubmit=True) == []
            assert await c.ambiguous() == []
    states = {key: entry.state for key, entry in (await read_rows(journal)).items()}
    assert states == {"a": EntryState.DONE, "b": EntryState.QUEUED, "c": EntryState.QUEUED}


# ---------------------------------------------------------------- CLI: key conflicts


def test_cli_batch_refuses_a_key_filed_for_another_request_before_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.sqlite"
    asyncio.run(make_rows(journal, ambiguous=[], submitted={"fox": "task-of-the-fox"}))
    batch = tmp_path / "p.jsonl"
    batch.write_text('{"prompt": "fine"}\n{"prompt": "a blue whale", "key": "fox"}\n')
    code = main(["batch", str(batch), "--fake", "--journal", str(journal), "--plain"])
    assert code == USAGE
    err = capsys.readouterr().err
    assert "'fox'" in err
    assert "nothing was sent" in err
    assert set(rows(journal)) == {"fox"}  # not even the fine line was sent


def test_cli_batch_refuses_one_key_for_two_requests_in_the_file(tmp_path: Path) -> None:
    batch = tmp_path / "p.jsonl"
    batch.write_text(
        '{"prompt": "a red fox", "key": "k"}\n{"prompt": "a blue whale", "key": "k"}\n'
    )
    with pytest.raises(CliError, match="lines 1 and 2 give the key 'k' to different") as info:
        jobs_from_items(read_batch(batch))
    assert info.value.code == USAGE


# ---------------------------------------------------------------- CLI: settle


def settle(journal: Path, *args: str) -> int:
    return main(["settle", "--journal", str(journal), *args])


def test_cli_settle_all_needs_resubmit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "j.sqlite"
    asyncio.run(make_rows(journal, ambiguous=["a", "b"], submitted={}))
    assert settle(journal, "--all") == USAGE
    assert "nothing is resubmitted by default" in capsys.readouterr().err
    assert settle(journal) == USAGE
    assert {e.state for e in rows(journal).values()} == {EntryState.AMBIGUOUS}
    assert settle(journal, "--all", "--resubmit") == 0
    assert {e.state for e in rows(journal).values()} == {EntryState.QUEUED}
    assert capsys.readouterr().out.count("settled") == 2


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("found.csv", "key,task_id\na,t-a\nb, t-b\n"),
        ("found.csv", "a,t-a\nb,t-b\n"),
        ("found.jsonl", '{"key": "a", "task_id": "t-a"}\n\n{"key": "b", "task_id": "t-b"}\n'),
    ],
)
def test_cli_settle_from_a_file_attaches_and_leaves_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str
) -> None:
    journal = tmp_path / "j.sqlite"
    asyncio.run(make_rows(journal, ambiguous=["a", "b", "c"], submitted={}))
    source = tmp_path / name
    source.write_text(content)
    assert settle(journal, "--from", str(source)) == 0
    after = rows(journal)
    assert {k: (e.state, e.task_id) for k, e in after.items()} == {
        "a": (EntryState.SUBMITTED, "t-a"),
        "b": (EntryState.SUBMITTED, "t-b"),
        "c": (EntryState.AMBIGUOUS, None),
    }
    err = capsys.readouterr().err
    assert "1 ambiguous row(s) left" in err
    assert "cometrunway resume --journal" in err


def test_cli_settle_from_a_file_and_all_resubmit_settles_everything(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    asyncio.run(make_rows(journal, ambiguous=["a", "b"], submitted={}))
    source = tmp_path / "found.csv"
    source.write_text("a,t-a\n")
    assert settle(journal, "--from", str(source), "--all", "--resubmit") == 0
    states = {k: e.state for k, e in rows(journal).items()}
    assert states == {"a": EntryState.SUBMITTED, "b": EntryState.QUEUED}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a\n", "line 1: give two columns, key,task_id (found 1)"),
        ("a,\n", "line 1: task_id is missing or empty"),
        ("a,t-1\na,t-2\n", "line 2: key 'a' is given two task ids"),
        ('{"key": "a"}\n', "line 1: task_id is missing or empty"),
        ('{"key": "a", "task_id": "t"\n', "line 1: not JSON"),
        ("a,t-1\nmissing,t-2\n", "'missing': no such row"),
        ("done,t-2\n", "'done' is submitted, not ambiguous"),
    ],
)
def test_cli_settle_from_a_bad_file_is_bad_input_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    journal = tmp_path / "j.sqlite"
    asyncio.run(make_rows(journal, ambiguous=["a"], submitted={"done": "t-done"}))
    source = tmp_path / "found.txt"
    source.write_text(content)
    assert settle(journal, "--from", str(source)) == USAGE
    assert expected in capsys.readouterr().err
    assert rows(journal)["a"].state is EntryState.AMBIGUOUS


def test_cli_settle_one_key_still_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "j.sqlite"
    asyncio.run(make_rows(journal, ambiguous=["alpha", "beta"], submitted={}))
    assert settle(journal, "alp", "--task-id", "t-1") == 0
    assert "settled alpha: it is task t-1" in capsys.readouterr().out
    assert settle(journal, "beta") == USAGE
    assert settle(journal, "beta", "--all", "--resubmit") == USAGE
    assert rows(journal)["beta"].state is EntryState.AMBIGUOUS


class RefusingIds(SQLiteJournal):
    """A journal whose disk fills just as the first task id is to be recorded."""

    refusals = 1

    async def mark_submitted(self, key: str, task_id: str, *, wait: bool = True) -> None:
        if self.refusals:
            self.refusals -= 1
            raise JournalError("journal j.sqlite: disk full: free some space")
        await super().mark_submitted(key, task_id, wait=wait)


async def test_an_id_the_journal_cannot_record_is_still_reported(tmp_path: Path) -> None:
    journal = RefusingIds(tmp_path / "j.sqlite")
    async with FakeCometAPI() as fake, client_for(fake, journal=journal) as c:
        with pytest.raises(JournalError, match=r"task \S+ was created .*disk full") as info:
            await c.submit(TextToVideo("a red fox"))
        created = fake.created_count()
        assert created == 1
        assert "client.track(" in str(info.value)
        # The client keeps running: the next submit is journaled as usual.
        handle = await c.submit(TextToVideo("a blue whale"))
        assert (await handle).task_id == handle.task_id
