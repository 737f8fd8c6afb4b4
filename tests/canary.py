"""The canary key and what every key-canary test checks: no exception (str, repr, traceback,
chained causes, attributes), no log record, no journal byte may hold a secret."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterable
from pathlib import Path

from hostile import Received, Script, http_answer

CANARY = "sk-CANARY-7f3e9a1c5b2d4e6f8a0b"
#: A test that hangs is a failure, not a stuck run: far above what any of these takes.
DEADLINE = 10


def echo_authorization(status: int) -> Script:
    """A server that quotes the caller's Authorization header back in its error body."""

    def script(request: Received) -> bytes:
        auth = request.header("authorization") or ""
        body = json.dumps({"code": status, "message": f"invalid token {auth}", "key": auth})
        return http_answer(f"HTTP/1.1 {status} Error", {}, body.encode())

    return script


def raw(answer: bytes) -> Script:
    return lambda _request: answer


#: Malformed HTTP (below aiohttp's parser) and well-formed answers echoing the key back.
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
    its chained causes and contexts, and the repr of each attribute."""
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


def logged(records: Iterable[logging.LogRecord]) -> str:
    """Every log record as a user would read it, exceptions included."""
    texts = []
    for record in records:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += rendered(record.exc_info[1])
        texts.append(f"{record.name}: {text}")
    return "\n".join(texts)


def assert_no_secret(
    name: str,
    errors: Iterable[BaseException],
    records: Iterable[logging.LogRecord],
    folder: Path | None = None,
    secret: str = CANARY,
) -> None:
    """No error, log record or journal file (in ``folder``) holds ``secret``."""
    for error in errors:
        assert secret not in rendered(error), (name, type(error).__name__)
    assert secret not in logged(records), name
    if folder is not None:
        assert secret.encode() not in journal_bytes(folder), name
