"""A headless Chromium the tests drive over the DevTools protocol (a websocket, via aiohttp).

    async with HeadlessChromium.start() as browser:
        page = await browser.open(url)          # waits for the load event
        value = await page.evaluate("document.title")
        png = await page.screenshot()
        page.errors                             # console errors, exceptions, failed loads

Debian's ``chromium`` package (``apt-get install chromium``; .ci/run installs it). It runs
with the flags a closed network needs (no background fetches, no component updates) and a
throwaway profile. Only pages on this machine are opened (``file://``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from typing import Any, Self

import aiohttp

CHROMIUM_NAMES = ("chromium", "chromium-browser")
START_TIMEOUT = 60  # seconds for the browser to print its DevTools address
CALL_TIMEOUT = 60  # seconds for one DevTools call (a page load included)
WINDOW = (1280, 900)
_LISTENING = "DevTools listening on "


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Page:
    """One tab: DevTools calls, and the errors the page reported so far."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self.errors: list[str] = []

    async def read(self) -> None:
        async for message in self._socket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._calls.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            self._on_event(data["method"], data.get("params", {}))
        for future in self._calls.values():
            if not future.done():
                future.set_exception(ConnectionError("the browser closed the connection"))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(arg.get("value", arg.get("description", ""))) for arg in params["args"]]
            self.errors.append("console: " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append("exception: " + details.get("exception", {}).get("description", ""))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        for future in self._waiters.pop(method, []):
            if not future.done():
                future.set_result(params)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._calls[ident] = future
        await self._socket.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        async with asyncio.timeout(CALL_TIMEOUT):
            answer = await future
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def next_event(self, method: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(method, []).append(future)
        return future

    async def navigate(self, url: str) -> None:
        loaded = self.next_event("Page.loadEventFired")
        await self.call("Page.navigate", url=url)
        async with asyncio.timeout(CALL_TIMEOUT):
            await loaded

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited), as JSON."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self) -> bytes:
        result = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])


class HeadlessChromium:
    """A running browser; ``open(url)`` gives its first tab, loaded."""

    def __init__(self, process: asyncio.subprocess.Process, endpoint: str) -> None:
        self._process = process
        self._endpoint = endpoint  # http://127.0.0.1:PORT

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls) -> AsyncIterator[Self]:
        executable = find_chromium()
        if executable is None:
            raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            process = await asyncio.create_subprocess_exec(
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--mute-audio",
                f"--user-data-dir={profile}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            drain: asyncio.Task[None] | None = None
            try:
                assert process.stderr is not None
                endpoint = await _devtools_endpoint(process.stderr)
                # Keep reading its log, or the browser blocks once the pipe is full.
                drain = asyncio.create_task(_discard(process.stderr))
                yield cls(process, endpoint)
            finally:
                if process.returncode is None:
                    process.terminate()
                    try:
                        async with asyncio.timeout(10):
                            await process.wait()
                    except TimeoutError:
                        process.kill()
                        await process.wait()
                if drain is not None:
                    drain.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await drain

    @contextlib.asynccontextmanager
    async def open(self, url: str) -> AsyncIterator[Page]:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self._endpoint}/json/list") as answer:
                targets = await answer.json()
            target = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as socket:
                page = Page(socket)
                reader = asyncio.create_task(page.read())
                try:
                    for domain in ("Page", "Runtime", "Log"):
                        await page.call(f"{domain}.enable")
                    # The viewport itself, not the window around it: screenshots of WINDOW.
                    await page.call(
                        "Emulation.setDeviceMetricsOverride",
                        width=WINDOW[0],
                        height=WINDOW[1],
                        deviceScaleFactor=1,
                        mobile=False,
                    )
                    await page.navigate(url)
                    yield page
                finally:
                    await socket.close()
                    with contextlib.suppress(ConnectionError):
                        await reader


async def _devtools_endpoint(stderr: asyncio.StreamReader) -> str:
    lines: list[str] = []
    async with asyncio.timeout(START_TIMEOUT):
        while line := (await stderr.readline()).decode(errors="replace"):
            lines.append(line)
            if _LISTENING in line:
                address = line.split(_LISTENING, 1)[1].strip()  # ws://127.0.0.1:PORT/devtools/…
                return "http://" + address.removeprefix("ws://").split("/", 1)[0]
    raise RuntimeError("chromium exited before listening:" + os.linesep + "".join(lines[-20:]))


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
