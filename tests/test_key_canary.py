"""The key never leaks: a canary key goes through every error path a broken or hostile
server can open, and must appear in no exception's ``str``/``repr``/traceback (chained causes
included), no log record at DEBUG, no byte of the journal and nothing the CLI prints.

Answers come from ``HostileServer`` (raw bytes below aiohttp's parser), so the client meets
malformed HTTP as well as well-formed answers that echo the key back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from hostile import HostileServer, Received, Script, http_answer
from support import FAST_POLL, FAST_RETRY

from cometrunway import Client, TextToVideo

CANARY = "sk-CANARY-7f3e9a1c5b2d4e6f8a0b"


def echo_authorization(status: int) -> Script:
    """A server that quotes the caller's Authorization header back in its error body."""

    def script(request: Received) -> bytes:
        auth = request.header("authorization") or ""
        body = json.dumps({"code": status, "message": f"invalid token {auth}", "key": auth})
        return http_answer(f"HTTP/1.1 {status} Error", {}, body.encode())

    return script


def raw(answer: bytes) -> Script:
    return lambda _request: answer


SCRIPTS: dict[str, Script] = {
    "bad status line": raw(b"HTTP/1.1 abc OK\r\n\r\n"),
    "header over 8 KiB": raw(
        http_answer("HTTP/1.1 200 OK", {"X-Big": "a" * 9000}, b'{"task_id": "t"}')
    ),
    "garbage": raw(b"\x00\xff\xfe not http at all\r\n\r\n"),
    "body cut short": raw(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"task_'),
    "dropped": lambda _request: None,
    "key echoed in a 401": echo_authorization(401),
    "key echoed in a 400": echo_authorization(400),
    "key echoed in a 500": echo_authorization(500),
    "key echoed in a 200 error": echo_authorization(200),
    "key echoed in a header": lambda request: http_answer(
        "HTTP/1.1 502 Bad Gateway",
        {"X-Echo": request.header("authorization") or ""},
        b"<html>bad gateway</html>",
    ),
}


def rendered(exc: BaseException) -> str:
    """Everything a user could see of an exception: str, repr and the full traceback with
    its chained causes and contexts."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        parts += [str(current), repr(current), repr(getattr(current, "args", ()))]
        parts += (
            [repr(value) for value in vars(current).values()]
            if hasattr(current, "__dict__")
            else []
        )
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        todo += list(getattr(current, "exceptions", ()))
    return "\n".join(parts)


def journal_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.glob("journal.sqlite*")))


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
    for error in errors:
        assert CANARY not in rendered(error), name
    for record in caplog.records:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += rendered(record.exc_info[1])
        assert CANARY not in text, (name, record.name)
    assert CANARY.encode() not in journal_bytes(tmp_path), name


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
