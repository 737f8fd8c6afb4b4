"""The canary key where the client meets hosts other than the API: output downloads and the
callback receiver.

Downloads: an output URL is chosen by the server, so the ``Authorization`` header must never
go with a download — not to a storage host, not to a host a redirect names, not even to the
API's own host — and whatever a download host answers (the key quoted in an error body or a
header, malformed HTTP) must leave the key in no exception, log record or journal byte.
Callbacks: the callback token is a secret too, and no log line may carry it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from canary import CANARY, DEADLINE, SCRIPTS, assert_no_secret, logged
from hostile import HostileServer, Received, Script, http_answer

from cometrunway import Client, CometRunwayError, PollPolicy, RetryPolicy, TextToVideo
from cometrunway.webhooks import RedactingAccessLogger

TASK_ID = "t-canary-out"
API_ROUTES = ("POST /runway/pro/generate", "POST /runway/feed")
MEDIA = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000
#: Downloads retried without waiting: the transient answers here fail fast.
NO_WAIT = RetryPolicy(max_tries=2, base_delay=0, max_delay=0, jitter=0)
QUICK = PollPolicy(initial_delay=0, interval=0.01, min_interval=0.005, jitter=0)


def media(_request: Received) -> bytes:
    return http_answer("HTTP/1.1 200 OK", {"Content-Type": "video/mp4"}, MEDIA)


def quoting(status: int) -> Script:
    """A download host answering ``status`` with the key (which it learned somewhere) in its
    body and a header, and whatever Authorization it was sent."""

    def script(request: Received) -> bytes:
        auth = request.header("authorization") or ""
        body = f"no access for {CANARY} ({auth})".encode()
        return http_answer(f"HTTP/1.1 {status} Refused", {"X-Key": CANARY}, body)

    return script


DOWNLOAD_SCRIPTS: dict[str, Script] = {
    "key quoted in a 400": quoting(400),
    "key quoted in a 403 (expired, even after a re-poll)": quoting(403),
    "key quoted in a 500": quoting(500),
    "key in a malformed status line": lambda _r: f"HTTP/1.1 abc {CANARY}\r\n\r\n".encode(),
    "bad status line": SCRIPTS["bad status line"],
    "garbage": SCRIPTS["garbage"],
    "body cut short": SCRIPTS["body cut short"],
    "dropped": SCRIPTS["dropped"],
}


class Hosts:
    """The API (creates and polls answered, its own host also serving ``/files/``), a
    download host and a second host that redirects lead to."""

    def __init__(self, download: Script) -> None:
        self.api = HostileServer(self._api)
        self.storage = HostileServer(download)
        self.other = HostileServer(media)
        self.output_url = ""

    def _api(self, request: Received) -> bytes:
        if request.target == API_ROUTES[0]:
            data: dict[str, object] = {"task_id": TASK_ID}
            body = {"code": 200, "msg": "ok", "data": data}
        elif request.target == API_ROUTES[1]:
            record = {"task_id": TASK_ID, "status": "SUCCESS", "progress": "100%"}
            body = {"code": "success", "data": {**record, "data": {"output": [self.output_url]}}}
        else:
            return media(request)  # a download from the API's own host
        return http_answer("HTTP/1.1 200 OK", {}, json.dumps(body).encode())

    async def __aenter__(self) -> Hosts:
        for server in (self.api, self.storage, self.other):
            await server.__aenter__()
        self.output_url = self.storage.url + "/out/video.mp4"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for server in (self.api, self.storage, self.other):
            await server.__aexit__(None, None, None)

    def downloads(self) -> list[Received]:
        """Every request that was not a create or a poll."""
        servers = (self.api, self.storage, self.other)
        return [r for s in servers for r in s.received if r.target not in API_ROUTES]


def redirect_to(location: str) -> Script:
    return lambda _r: http_answer("HTTP/1.1 302 Found", {"Location": location}, b"")


async def download(hosts: Hosts, folder: Path, *, many: bool) -> list[BaseException]:
    errors: list[BaseException] = []
    try:
        async with Client(
            CANARY,
            base_url=hosts.api.url,
            journal=folder / "journal.sqlite",
            retry=NO_WAIT,
            poll=QUICK,
        ) as client:
            handle = await client.submit(TextToVideo("a canary's output"))
            try:
                if many:
                    await client.download_many([handle], folder / "many")
                else:
                    await client.download(handle, folder / "one")
            except Exception as exc:
                errors.append(exc)
    except (CometRunwayError, ExceptionGroup) as exc:
        errors.append(exc)
    return errors


@pytest.mark.parametrize("many", [False, True], ids=["download", "download_many"])
@pytest.mark.parametrize("name", list(DOWNLOAD_SCRIPTS))
async def test_no_download_error_path_leaks_the_key(
    name: str, many: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Hosts(DOWNLOAD_SCRIPTS[name]) as hosts:
        errors = await download(hosts, tmp_path, many=many)
    assert errors, name  # none of these answers is an output
    assert hosts.downloads(), name
    assert all(r.header("authorization") is None for r in hosts.downloads()), name
    assert_no_secret(name, errors, caplog.records, tmp_path)


@pytest.mark.parametrize("where", ["another host", "the API's own host"])
async def test_no_authorization_follows_a_redirect(
    where: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hosts = Hosts(lambda _r: b"")
    async with hosts:
        target = hosts.other.url if where == "another host" else hosts.api.url
        hosts.storage._script = redirect_to(target + "/files/video.mp4")
        errors = await download(hosts, tmp_path, many=False)
    assert errors == []
    [followed] = (hosts.other if where == "another host" else hosts.api).received[-1:]
    assert followed.target == "GET /files/video.mp4"
    assert all(r.header("authorization") is None for r in hosts.downloads())
    assert (tmp_path / "one" / f"{TASK_ID}.mp4").read_bytes() == MEDIA
    assert_no_secret(where, errors, caplog.records, tmp_path)


async def test_an_output_on_the_api_host_gets_no_authorization(tmp_path: Path) -> None:
    hosts = Hosts(media)
    async with hosts:
        hosts.output_url = hosts.api.url + "/files/video.mp4"
        errors = await download(hosts, tmp_path, many=False)
    assert errors == []
    [fetched] = hosts.downloads()
    assert fetched.target == "GET /files/video.mp4"
    assert fetched.header("authorization") is None
    api_requests = [r for r in hosts.api.received if r.target in API_ROUTES]
    assert all(r.header("authorization") == f"Bearer {CANARY}" for r in api_requests)


# ---------------------------------------------------------------- callbacks

TOKEN = "cb-CANARY-token-5d1e8b2f9a7c"


async def test_the_callback_receiver_logs_no_token(caplog: pytest.LogCaptureFixture) -> None:
    """Deliveries with the right token, a wrong one and bodies that quote the callback URL
    (token included) in every field the receiver reads: no log record holds the token."""
    caplog.set_level(logging.DEBUG)
    url = "http://127.0.0.1:9/runway/callback"
    async with HostileServer(lambda _r: None) as api:
        async with Client(
            CANARY, base_url=api.url, callback_url=url, callback_token=TOKEN
        ) as client:
            # The access log the receiver's documentation asks for (aiohttp's own writes
            # the query, token included).
            server = TestServer(client.callback_app())
            await server.start_server(access_log_class=RedactingAccessLogger)
            quoted = client.callback_url or ""
            assert TOKEN in quoted
            bodies = [
                {"task_id": "t-1", "status": quoted},
                {"task_id": TOKEN, "status": "SUCCESS"},
                {"task_id": quoted, "status": "4"},
                {"data": {"task_id": "t-2", "status": quoted, "callback_url": quoted}},
                {"code": 200, "data": [quoted]},
            ]
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(DEADLINE)) as http:
                    for token in (TOKEN, TOKEN[:-1] + "x"):
                        for body in [*map(json.dumps, bodies), f"not json {quoted}"]:
                            target = server.make_url(f"/runway/callback?token={token}")
                            async with http.post(target, data=body) as answer:
                                assert answer.status < 500
            finally:
                await server.close()
    assert "callback" in logged(caplog.records)
    assert_no_secret("callbacks", [], caplog.records, secret=TOKEN)
