"""An aiohttp.web backend: one ``Client`` per app, opened and closed with the app, plus the
route CometAPI posts task callbacks to.

Shows:

* the client opened in ``app.cleanup_ctx`` (startup) and closed at shutdown: one HTTP
  session and one poller for every request the app serves;
* ``POST /videos`` submitting a ``TextToVideo``, and ``GET /videos/{task_id}?wait=30``
  awaiting the handle under ``asyncio.timeout`` (a client that disconnects cancels only its
  own wait, never the task);
* ``POST /runway/callback`` with ``cometrunway.webhooks.aiohttp_handler``: it checks the
  client's secret token and wakes the poller for that task (results always come from a
  real poll).

    python examples/aiohttp_backend.py

Run as a script, it serves the app on 127.0.0.1, makes one video through its own HTTP API
and exits. Without ``COMETAPI_KEY`` the app talks to an in-process ``FakeCometAPI``, which
also posts the callback. With ``COMETAPI_KEY`` set it makes ONE real, billed generation.
CometAPI can only deliver callbacks when ``PUBLIC_URL`` gives an address it can reach;
without one the app relies on polling alone. In production, build the app with
``create_app(Client.from_env(callback_url=...))`` and serve it with ``web.run_app``.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

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
from cometrunway.webhooks import (
    RECEIVER_KEY,
    CallbackReceiver,
    RedactingAccessLogger,
    aiohttp_handler,
)

CALLBACK_PATH = "/runway/callback"
CLIENT_KEY = web.AppKey("cometrunway_client", Client)


def create_app(client: Client) -> web.Application:
    """The application. ``client`` is not open yet: the app opens it on startup."""
    app = web.Application()
    app[CLIENT_KEY] = client

    async def client_context(app: web.Application) -> AsyncIterator[None]:
        async with app[CLIENT_KEY]:  # startup: session + poller; shutdown: both closed
            yield

    app.cleanup_ctx.append(client_context)

    receiver = CallbackReceiver(client)
    app[RECEIVER_KEY] = receiver  # for receiver.statistics()
    app.router.add_post(CALLBACK_PATH, aiohttp_handler(receiver))
    app.router.add_post("/videos", create_video)
    app.router.add_get("/videos/{task_id}", get_video)
    return app


async def create_video(request: web.Request) -> web.Response:
    client = request.app[CLIENT_KEY]
    payload = await request.json()
    try:
        video = TextToVideo(str(payload.get("prompt", "")), seconds=int(payload.get("seconds", 5)))
    except ValueError as exc:  # the request model names the bad field
        return web.json_response({"error": str(exc)}, status=400)
    try:
        handle = await client.submit(video)
    except AmbiguousSubmitError as exc:
        # The task may exist: do not let the caller retry blindly.
        return web.json_response({"error": str(exc), "ambiguous": True}, status=502)
    except APIError as exc:
        return web.json_response({"error": exc.message, "code": exc.code}, status=502)
    return web.json_response({"task_id": handle.task_id}, status=202)


async def get_video(request: web.Request) -> web.Response:
    client = request.app[CLIENT_KEY]
    # track() returns the handle already followed, or starts following the id. A real app
    # would first check that the id belongs to the caller.
    handle = client.track(request.match_info["task_id"])
    wait = min(float(request.query.get("wait", "0")), 60.0)
    if wait > 0:
        try:
            async with asyncio.timeout(wait):
                await handle  # shielded: a timeout here leaves the task tracked
        except TimeoutError:
            pass
        except CometRunwayError:
            pass  # failed or lost: reported below
    return web.json_response(describe(handle))


def describe(handle: TaskHandle) -> dict[str, object]:
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


async def demo() -> None:
    # Bind first, so the callback URL (which the client needs up front) has the real port.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    local = f"http://127.0.0.1:{port}"

    fake: FakeCometAPI | None = None
    if os.environ.get("COMETAPI_KEY"):
        public = os.environ.get("PUBLIC_URL", "").rstrip("/")
        client = Client.from_env(callback_url=f"{public}{CALLBACK_PATH}" if public else None)
    else:
        print("COMETAPI_KEY is not set: using an in-process FakeCometAPI")
        fake = await FakeCometAPI(lifecycle=Lifecycle.by_time(queued=0.3, running=1.0)).start()
        # A lazy first poll (3 s) for a task that ends after 1.3 s: the callback wakes it.
        lazy = PollPolicy(initial_delay=3.0, interval=3.0, max_interval=3.0)
        client = Client(
            "demo-key", base_url=fake.url, poll=lazy, callback_url=f"{local}{CALLBACK_PATH}"
        )

    app = create_app(client)
    runner = web.AppRunner(app, access_log_class=RedactingAccessLogger)
    await runner.setup()  # opens the client
    try:
        await web.SockSite(runner, sock).start()
        print(f"serving on {local}")
        async with aiohttp.ClientSession(local) as http:
            async with http.post("/videos", json={"prompt": "a cat on a skateboard"}) as resp:
                created = await resp.json()
            print(f"POST /videos -> {resp.status} {created}")
            task_id = created["task_id"]
            async with http.get(f"/videos/{task_id}", params={"wait": "60"}) as resp:
                result = await resp.json()
            print(f"GET /videos/{task_id}?wait=60 -> {result['status']} {result['video_url']}")
        if fake is not None:
            await fake.drain_callbacks()
        stats = app[RECEIVER_KEY].statistics()
        print(
            f"callbacks: received={stats.received} accepted={stats.accepted} "
            f"(not followed any more: {stats.unknown})"
        )
    finally:
        await runner.cleanup()  # closes the client
        if fake is not None:
            await fake.close()


if __name__ == "__main__":
    asyncio.run(demo())
