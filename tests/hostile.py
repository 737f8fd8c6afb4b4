"""A hostile HTTP server for tests: it answers each request with whatever raw bytes a test
scripts — a malformed status line, an oversized header, an echo of the caller's headers, a
body cut short, or nothing at all (the connection dropped).

``FakeCometAPI`` speaks well-formed HTTP; this speaks whatever the test writes, below
aiohttp's server, so the client's HTTP parser meets the answers a broken or hostile server
could really send. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType

import attrs

#: Requests from the client are small JSON; a head bigger than this is a test bug.
_MAX_HEAD_BYTES = 64 * 1024


@attrs.frozen
class Received:
    """One request as the server read it."""

    head: bytes
    body: bytes

    @property
    def target(self) -> str:
        """``"METHOD /path"`` of the request line."""
        method, path, *_ = self.head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        return f"{method} {path}"

    def header(self, name: str) -> str | None:
        prefix = name.lower().encode() + b":"
        for line in self.head.split(b"\r\n")[1:]:
            if line.lower().startswith(prefix):
                return line[len(prefix) :].strip().decode("latin-1")
        return None


#: A script turns the request into the raw bytes to write back (None: drop the connection).
Script = Callable[[Received], bytes | None]


def http_answer(status_line: str, headers: dict[str, str], body: bytes) -> bytes:
    """Raw bytes of an HTTP/1.1 answer (``Content-Length`` added unless given)."""
    fields = {"Content-Length": str(len(body)), "Connection": "close", **headers}
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return f"{status_line}\r\n{head}\r\n".encode("latin-1") + body


class HostileServer:
    """``async with HostileServer(script) as server: server.url``; ``server.received``
    lists what was asked."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self._server: asyncio.Server | None = None
        self.received: list[Received] = []
        self._arrived = asyncio.Condition()
        self.url = ""

    async def __aenter__(self) -> HostileServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def wait_until(self, condition: Callable[[list[Received]], bool]) -> None:
        """Return once ``condition(self.received)`` holds (checked as each request arrives)."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: condition(self.received))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _MAX_HEAD_BYTES:
                return
            received = Received(head, b"")
            length = int(received.header("content-length") or 0)
            received = Received(head, await reader.readexactly(length))
            self.received.append(received)
            async with self._arrived:
                self._arrived.notify_all()
            answer = self._script(received)
            if answer is not None:
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
