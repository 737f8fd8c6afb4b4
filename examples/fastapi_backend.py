"""A FastAPI backend: one ``Client`` per app, opened in the lifespan, plus the route
CometAPI posts task callbacks to.

Shows:

* the client opened in FastAPI's ``lifespan`` and closed at shutdown: one HTTP session and
  one poller for every request the app serves;
* ``POST /videos`` submitting a ``TextToVideo``, and ``GET /videos/{task_id}?wait=30``
  awaiting the handle under ``asyncio.timeout`` (a client that disconnects cancels only its
  own wait, never the task);
* ``POST /runway/callback`` with ``cometrunway.webhooks.starlette_endpoint``: it checks the
  client's secret token and wakes the poller for that task.

Serve it yourself with uvicorn, from the examples folder. ``app_from_env`` reads
``COMETAPI_KEY``, and ``PUBLIC_URL``, the address CometAPI can reach your app at, for
callbacks::

    uvicorn --factory fastapi_backend:app_from_env

Or run the demo::

    python examples/fastapi_backend.py

Run as a script, it serves the app (with uvicorn if installed, else in-process through
httpx), makes one video through its own HTTP API and exits. Without ``COMETAPI_KEY`` the app
talks to an in-process ``FakeCometAPI``. With ``COMETAPI_KEY`` set it makes ONE real, billed
generation. Needs ``fastapi``, and ``uvicorn`` or ``httpx``. Without them the script says so
and exits. ``aiohttp_backend.py`` is the same app on aiohttp.web, which needs nothing extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

from cometrunway import (
    AmbiguousSubmitError,
    APIError,
    Client,
    CometRunwayError,
    PollPolicy,
    TaskHandle,
    TextToVideo,
)
from cometrunway.testing import FakeCometAPI, Lifecycle
from cometrunway.webhooks import CallbackReceiver, starlette_endpoint

try:
    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel
except ImportError:
    if __name__ == "__main__":
        print("skipped: this example needs FastAPI (pip install fastapi uvicorn)")
        raise SystemExit(0) from None
    raise

CALLBACK_PATH = "/runway/callback"


class VideoIn(BaseModel):
    prompt: str
    seconds: int = 5


def create_app(client: Client) -> FastAPI:
    """The application. ``client`` is not open yet: the lifespan opens it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with client:  # startup: session + poller; shutdown: both closed
            yield

    app = FastAPI(lifespan=lifespan)
    receiver = CallbackReceiver(client)
    app.state.callback_receiver = receiver  # for receiver.statistics()
    app.add_api_route(
        CALLBACK_PATH, starlette_endpoint(receiver), methods=["POST"], include_in_schema=False
    )

    @app.post("/videos", status_code=202)
    async def create_video(video: VideoIn) -> dict[str, Any]:
        try:
            request = TextToVideo(video.prompt, seconds=video.seconds)
        except ValueError as exc:  # the request model names the bad field
            raise HTTPException(400, str(exc)) from exc
        try:
            handle = await client.submit(request)
        except AmbiguousSubmitError as exc:
            # The task may exist: do not let the caller retry blindly.
            raise HTTPException(502, {"error": str(exc), "ambiguous": True}) from exc
        except APIError as exc:
            raise HTTPException(502, {"error": exc.message, "code": exc.code}) from exc
        return {"task_id": handle.task_id}

    @app.get("/videos/{task_id}")
    async def get_video(task_id: str, wait: float = 0) -> dict[str, Any]:
        # track() returns the handle already followed, or starts following the id. A real
        # app would first check that the id belongs to the caller.
        handle = client.track(task_id)
        if wait > 0:
            try:
                async with asyncio.timeout(min(wait, 60.0)):
                    await handle  # shielded: a timeout here leaves the task tracked
            except (TimeoutError, CometRunwayError):
                pass  # still running, or failed: reported below
        return describe(handle)

    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory``: the real API, callbacks at ``PUBLIC_URL`` when it is set."""
    public = os.environ.get("PUBLIC_URL", "").rstrip("/")
    return create_app(Client.from_env(callback_url=f"{public}{CALLBACK_PATH}" if public else None))


def describe(handle: TaskHandle) -> dict[str, Any]:
    task = handle.task
    error = handle.exception() if handle.done() else None
    return {
        "task_id": handle.task_id,
        "status": handle.status.value,
        "progress": handle.progress,
        "video_url": task.video_url if task else None,
        "error": str(error) if error else None,
    }


# ---------------------------------------------------------------- the demo


async def exercise(post: Any, get: Any) -> None:
    """One video through the app's own API; ``post``/``get`` return (status, json)."""
    status, created = await post("/videos", {"prompt": "a cat on a skateboard"})
    print(f"POST /videos -> {status} {created}")
    task_id = created["task_id"]
    status, result = await get(f"/videos/{task_id}?wait=60")
    print(f"GET /videos/{task_id}?wait=60 -> {result['status']} {result['video_url']}")


async def serve_with_uvicorn(app: FastAPI, sock: socket.socket, local: str) -> None:
    import aiohttp
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # uvicorn offers no event for it
            if serving.done():
                await serving  # startup failed: raise its error
            await asyncio.sleep(0.02)
        print(f"serving on {local} (uvicorn)")
        async with aiohttp.ClientSession(local) as http:

            async def post(path: str, body: Any) -> tuple[int, Any]:
                async with http.post(path, json=body) as resp:
                    return resp.status, await resp.json()

            async def get(path: str) -> tuple[int, Any]:
                async with http.get(path) as resp:
                    return resp.status, await resp.json()

            await exercise(post, get)
    finally:
        server.should_exit = True
        await serving


async def serve_in_process(app: FastAPI) -> None:
    import httpx

    # No socket: the lifespan is entered by hand, requests go straight to the ASGI app.
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:

            async def post(path: str, body: Any) -> tuple[int, Any]:
                resp = await http.post(path, json=body)
                return resp.status_code, resp.json()

            async def get(path: str) -> tuple[int, Any]:
                resp = await http.get(path, timeout=70)
                return resp.status_code, resp.json()

            print("serving in process (httpx.ASGITransport; no callbacks without a socket)")
            await exercise(post, get)


async def demo() -> None:
    with_uvicorn = importlib.util.find_spec("uvicorn") is not None
    if not with_uvicorn and importlib.util.find_spec("httpx") is None:
        print("skipped: serving the demo needs uvicorn or httpx (pip install uvicorn)")
        return
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    local = f"http://127.0.0.1:{sock.getsockname()[1]}"
    callback_url = f"{local}{CALLBACK_PATH}" if with_uvicorn else None

    async with contextlib.AsyncExitStack() as stack:
        fake: FakeCometAPI | None = None
        if os.environ.get("COMETAPI_KEY"):
            public = os.environ.get("PUBLIC_URL", "").rstrip("/")
            client = Client.from_env(callback_url=f"{public}{CALLBACK_PATH}" if public else None)
        else:
            print("COMETAPI_KEY is not set: using an in-process FakeCometAPI")
            lifecycle = Lifecycle.by_time(queued=0.3, running=1.0)
            fake = await stack.enter_async_context(FakeCometAPI(lifecycle=lifecycle))
            # A lazy first poll (3 s) for a task that ends after 1.3 s: the callback wakes it.
            lazy = PollPolicy(initial_delay=3.0, interval=3.0, max_interval=3.0)
            client = Client("demo-key", base_url=fake.url, poll=lazy, callback_url=callback_url)
        app = create_app(client)
        if with_uvicorn:
            await serve_with_uvicorn(app, sock, local)
        else:
            sock.close()
            await serve_in_process(app)
        if fake is not None:
            await fake.drain_callbacks()
        stats = app.state.callback_receiver.statistics()
        print(
            f"callbacks: received={stats.received} accepted={stats.accepted} "
            f"(not followed any more: {stats.unknown})"
        )


if __name__ == "__main__":
    asyncio.run(demo())
