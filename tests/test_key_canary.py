"""The key never leaks: a canary key goes through every error path a broken or hostile
server can open, and must appear in no exception's ``str``/``repr``/traceback (chained causes
included), no log record at DEBUG, no byte of the journal and nothing the CLI prints.

Answers come from ``HostileServer`` (raw bytes below aiohttp's parser), so the client meets
malformed HTTP as well as well-formed answers that echo the key back. Creates and the CLI
here; polls, cancels, settles and resumes in ``test_key_canary_paths.py``; downloads and
callbacks in ``test_key_canary_outputs.py``.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from canary import CANARY, SCRIPTS, assert_no_secret, journal_bytes
from hostile import HostileServer
from support import FAST_POLL, FAST_RETRY

from cometrunway import Client, TextToVideo


@pytest.mark.parametrize("name", list(SCRIPTS))
async def test_no_create_error_path_leaks_the_key(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with HostileServer(SCRIPTS[name]) as server:
        try:
            async with Client(
                CANARY,
                base_url=server.url,
                journal=tmp_path / "journal.sqlite",
                retry=FAST_RETRY,
                poll=FAST_POLL,
            ) as client:
                try:
                    await client.submit(TextToVideo("a canary in a coal mine"))
                except Exception as exc:
                    errors.append(exc)
                for entry in await client.ambiguous():
                    assert CANARY not in repr(entry)
        except Exception as exc:
            errors.append(exc)
    assert server.received, "the request never reached the hostile server"
    assert server.received[0].header("authorization") == f"Bearer {CANARY}"
    assert_no_secret(name, errors, caplog.records, tmp_path)


@pytest.mark.parametrize("name", ["bad status line", "key echoed in a 401", "key echoed in a 500"])
def test_the_cli_prints_no_key_on_hostile_answers(name: str, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(CANARY + "\n")
    server_script = SCRIPTS[name]

    async def run() -> subprocess.CompletedProcess[str]:
        async with HostileServer(server_script) as server:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cometrunway", "generate", "a canary", "-vv",
                "--base-url", server.url, "--api-key-file", str(key_file), "--journal",
                str(tmp_path / "journal.sqlite"), "--json",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
            )  # fmt: skip
            out, err = await proc.communicate()
            assert proc.returncode is not None
            return subprocess.CompletedProcess([], proc.returncode, out.decode(), err.decode())

    result = asyncio.run(run())
    assert result.returncode != 0
    assert CANARY not in result.stdout
    assert CANARY not in result.stderr
    assert CANARY.encode() not in journal_bytes(tmp_path)
