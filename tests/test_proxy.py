"""Proxies: with ``HTTP_PROXY`` set, API requests and output downloads both go through the
proxy (a real forwarding proxy on 127.0.0.1 here), and the download through it carries no
credential. ``NO_PROXY`` is honoured by the same lookup (see test_transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from support import FAST_POLL, FAST_RETRY, KEY

from cometrunway import Client, TextToVideo
from cometrunway.testing import FakeCometAPI

PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
              "all_proxy", "NO_PROXY", "no_proxy")  # fmt: skip


class ForwardingProxy:
    """A plain HTTP forward proxy: takes each request for ``http://host/...`` and sends it on,
    recording what passed through."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []  # method, url, authorization
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = str(request.url)  # absolute-form request target: the URL to fetch
        self.seen.append((request.method, target, request.headers.get("Authorization")))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with aiohttp.ClientSession(trust_env=False, auto_decompress=False) as upstream:
            async with upstream.request(
                request.method, target, headers=headers, data=await request.read(),
                allow_redirects=False,
            ) as answer:  # fmt: skip
                body = await answer.read()
                drop = {"content-length", "transfer-encoding", "connection", "content-encoding"}
                kept = {k: v for k, v in answer.headers.items() if k.lower() not in drop}
                return web.Response(status=answer.status, body=body, headers=kept)


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardingProxy]:
    forwarding = ForwardingProxy()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forwarding.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    forwarding.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield forwarding
    await runner.cleanup()


async def test_api_requests_and_downloads_go_through_the_environment_proxy(
    proxy: ForwardingProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with FakeCometAPI() as fake:
        async with Client(KEY, base_url=fake.url, poll=FAST_POLL, retry=FAST_RETRY) as client:
            handle = await client.submit(TextToVideo("a fox crossing a frozen lake"))
            await handle
            paths = await handle.download(tmp_path)
    assert paths and all(path.stat().st_size > 0 for path in paths)
    methods_and_paths = [(method, url.removeprefix(fake.url)) for method, url, _ in proxy.seen]
    assert ("POST", "/runway/pro/generate") in methods_and_paths
    assert any(path.startswith("/runway/feed") for _, path in methods_and_paths)
    downloads = [entry for entry in proxy.seen if entry[0] == "GET" and "/cdn/" in entry[1]]
    assert downloads, proxy.seen
    assert all(authorization is None for _, _, authorization in downloads)
    api = [entry for entry in proxy.seen if "/runway/" in entry[1]]
    assert all(authorization == f"Bearer {KEY}" for _, _, authorization in api)


async def test_client_download_takes_the_users_session(tmp_path: Path) -> None:
    requests: list[str] = []

    async def on_request_start(
        session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        requests.append(str(params.url))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with FakeCometAPI() as fake, aiohttp.ClientSession(trace_configs=[trace]) as mine:
        async with Client(KEY, base_url=fake.url, poll=FAST_POLL, retry=FAST_RETRY) as client:
            handle = await client.submit(TextToVideo("a heron at dawn"))
            task = await handle
            paths = await client.download(task, tmp_path, session=mine)
        assert not mine.closed  # borrowed, not closed
    assert paths
    assert any("/cdn/" in url for url in requests)
