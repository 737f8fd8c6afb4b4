"""The transport against real aiohttp servers on 127.0.0.1: what reached the server or not."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cometrunway.errors import ClientStateError, TransportError
from cometrunway.protocol import HTTPRequest
from cometrunway.transport import MAX_BODY_BYTES, AiohttpTransport


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(path: str = "/runway/feed") -> HTTPRequest:
    return HTTPRequest("POST", path, (("Authorization", "Bearer secret-key"),), b'{"task_id":"x"}')


async def _server(handler: object) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)  # type: ignore[arg-type]
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_round_trip_keeps_status_headers_and_body() -> None:
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"ok": True}, status=201, headers={"Retry-After": "3"})

    server = await _server(handler)
    transport = AiohttpTransport(str(server.make_url("")))
    await transport.open()
    try:
        response = await transport.send(_request())
    finally:
        await transport.close()
        await server.close()
    assert response.status == 201
    assert response.header("retry-after") == "3"
    assert response.body == b'{"ok": true}'
    assert seen[0].headers["Authorization"] == "Bearer secret-key"


async def test_connect_failure_was_not_sent() -> None:
    transport = AiohttpTransport(f"http://127.0.0.1:{_free_port()}")
    await transport.open()
    try:
        with pytest.raises(TransportError) as info:
            await transport.send(_request())
    finally:
        await transport.close()
    assert info.value.request_sent is False
    assert isinstance(info.value, ConnectionError)
    assert "secret-key" not in str(info.value)


async def test_dropped_connection_may_have_been_sent() -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError

    server = await _server(handler)
    transport = AiohttpTransport(str(server.make_url("")))
    await transport.open()
    try:
        with pytest.raises(TransportError) as info:
            await transport.send(_request())
    finally:
        await transport.close()
        await server.close()
    assert info.value.request_sent is True


async def test_read_timeout_may_have_been_sent() -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    server = await _server(handler)
    transport = AiohttpTransport(
        str(server.make_url("")), timeout=aiohttp.ClientTimeout(sock_read=0.05, connect=5)
    )
    await transport.open()
    try:
        with pytest.raises(TransportError) as info:
            await transport.send(_request())
    finally:
        release.set()
        await transport.close()
        await server.close()
    assert info.value.request_sent is True
    assert "timed out" in str(info.value)


async def test_redirects_are_not_followed() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=301, headers={"Location": "https://elsewhere.invalid/"})

    server = await _server(handler)
    transport = AiohttpTransport(str(server.make_url("")))
    await transport.open()
    try:
        response = await transport.send(_request())
    finally:
        await transport.close()
        await server.close()
    assert response.status == 301


async def test_oversized_answer_is_refused() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (MAX_BODY_BYTES + 10))

    server = await _server(handler)
    transport = AiohttpTransport(str(server.make_url("")))
    await transport.open()
    try:
        with pytest.raises(TransportError, match="larger than"):
            await transport.send(_request())
    finally:
        await transport.close()
        await server.close()


async def test_borrowed_session_stays_open_owned_one_closes() -> None:
    async with aiohttp.ClientSession() as session:
        borrowed = AiohttpTransport("http://127.0.0.1:1", session=session)
        await borrowed.open()
        await borrowed.close()
        assert not session.closed
    owned = AiohttpTransport("http://127.0.0.1:1")
    await owned.open()
    session_of_owned = owned._session
    await owned.close()
    assert session_of_owned is not None and session_of_owned.closed
    with pytest.raises(ClientStateError):
        await owned.open()
    with pytest.raises(ClientStateError, match="not open"):
        await owned.send(_request())


async def test_the_owned_session_honours_proxy_settings_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    default = AiohttpTransport("http://api.example")
    await default.open()
    assert str(default._proxy) == "http://proxy.example:3128"
    await default.aclose()
    opted_out = AiohttpTransport("http://api.example", trust_env=False)
    await opted_out.open()
    assert opted_out._proxy is None
    await opted_out.aclose()
    monkeypatch.setenv("NO_PROXY", "api.example")
    bypassed = AiohttpTransport("http://api.example")
    await bypassed.open()
    assert bypassed._proxy is None
    await bypassed.aclose()


async def test_aiohttp_transport_fits_the_transport_protocol() -> None:
    from cometrunway.testing import MockTransport
    from cometrunway.transport import Transport

    assert isinstance(AiohttpTransport("http://127.0.0.1:1"), Transport)
    assert isinstance(MockTransport(lambda request: None), Transport)  # type: ignore[arg-type,return-value]
