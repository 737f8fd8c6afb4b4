"""The fake's HTTP pieces: answers, error envelopes, auth, fault application, byte ranges.

Small functions over aiohttp's request and response types, shared by ``FakeCometAPI``'s
handlers; none of them keeps state.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Generic, TypeVar, overload

import aiohttp
from aiohttp import web

from ._values import (
    _HTML_404,
    _JSON,
    NOT_FOUND_SHAPES,
    Fault,
    NotFoundShape,
    _dumps,
    _platform_error,
)

_T = TypeVar("_T")


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=_dumps(value), headers={"Content-Type": _JSON})


def _flat_error(status: int, code: str, message: str) -> web.Response:
    # Task routes answer errors flat, new-api style (wire reference §3.1, §6 C17).
    return _json({"code": code, "message": message, "data": None}, status)


def _task_not_exist(shape: NotFoundShape = "code_400") -> web.Response:
    # "Not visible yet", in the shape asked for (wire reference §3.1, §8.4).
    status, body, content_type = NOT_FOUND_SHAPES[shape]
    return web.Response(status=status, body=body, headers={"Content-Type": content_type})


def _platform_response(status: int, message: str, code: str = "", **headers: str) -> web.Response:
    # The platform error envelope (wire reference §3.2).
    all_headers = {"Content-Type": _JSON, **headers}
    return web.Response(status=status, body=_platform_error(message, code), headers=all_headers)


def _unknown_route(request: web.BaseRequest, json_errors: bool) -> web.Response:
    if not json_errors:
        # A wrong path on CometAPI is an HTML page, not a JSON 404 (wire reference §3.2).
        return web.Response(status=404, text=_HTML_404, content_type="text/html")
    message = f"Invalid URL ({request.method} {request.path})"
    return _platform_response(404, message, "invalid_request")


def _auth_error(request: web.BaseRequest, api_key: str | None) -> web.Response | None:
    # Missing or wrong key: 401 in the platform envelope (wire reference §3.2).
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if not header.strip():
        message = "missing Authorization header: send 'Bearer <COMETAPI_KEY>'"
    elif scheme.lower() != "bearer" or not token:
        message = "invalid token: the Authorization header must be 'Bearer <key>'"
    elif api_key is not None and token != api_key:
        message = "invalid token (request id: fake)"
    else:
        return None
    return _platform_response(401, message)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _close_connection(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()


async def _apply_fault(
    request: web.BaseRequest, fault: Fault, answer: web.StreamResponse | None
) -> web.StreamResponse:
    """Answer with ``fault`` instead of (or, mid-body, with part of) ``answer``."""
    if fault.action == "respond":
        return web.Response(status=fault.status, body=fault.body, headers=fault.headers)
    if fault.action == "drop" or not isinstance(answer, web.Response):
        # aiohttp sees the closed transport when it writes, and drops the answer quietly.
        _close_connection(request)
        return web.Response()
    body = answer.body if isinstance(answer.body, bytes) else b""
    partial = web.StreamResponse(status=answer.status, headers=answer.headers)
    partial.content_length = len(body)
    await partial.prepare(request)
    await partial.write(body[: int(len(body) * fault.fraction)])
    _close_connection(request)
    return partial


def _ranged(request: web.BaseRequest, data: bytes, content_type: str) -> web.Response:
    """``data`` whole, or the byte range the request asks for (206, or 416 past the end)."""
    size = len(data)
    headers = {"Content-Type": content_type, "Accept-Ranges": "bytes"}
    if "Range" not in request.headers:
        return web.Response(body=data, headers=headers)
    try:
        start, stop, _ = request.http_range.indices(size)
    except ValueError:
        start, stop = size, size
    if start >= stop:
        headers["Content-Range"] = f"bytes */{size}"
        return web.Response(status=416, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return web.Response(status=206, body=data[start:stop], headers=headers)


class _Choice(Generic[_T]):
    """A public attribute that takes one of a few words, checked on every assignment."""

    def __init__(self, *allowed: _T) -> None:
        self._allowed = allowed
        self._name = self._slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name, self._slot = name, "_" + name

    @overload
    def __get__(self, obj: None, owner: type) -> _Choice[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...
    def __get__(self, obj: object, owner: type | None = None) -> _T | _Choice[_T]:
        if obj is None:
            return self
        value: _T = getattr(obj, self._slot)
        return value

    def __set__(self, obj: object, value: _T) -> None:
        if value not in self._allowed:
            raise ValueError(f"{self._name} must be one of {self._allowed!r}, got {value!r}")
        setattr(obj, self._slot, value)


async def _post_callback(
    session: aiohttp.ClientSession, url: str, body: bytes
) -> tuple[int | None, str | None]:
    """POST one callback; the receiver's status, or None and why nothing was delivered."""
    try:
        async with session.post(url, data=body, headers={"Content-Type": _JSON}) as response:
            await response.read()
            return response.status, None
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"  # swallowed: the receiver's problem


def _official_refusal(action: str, body: dict[str, Any]) -> web.Response | None:
    """The documented refusals of an official-format create body, or None."""
    refs = body.get("referenceImages")
    if action == "TEXT_TO_IMAGE" and (not isinstance(refs, list) or not refs):
        # CometAPI requires referenceImages where Runway does not (§1.11, §5).
        return _flat_error(400, "reference_images_empty", "reference_images_empty")
    if action not in _AUDIO_FIELDS:
        return None
    prompt = body.get("promptText")
    if not isinstance(prompt, str) or not prompt.strip():
        return _flat_error(400, "invalid_request", "promptText is required")  # §8.1
    allowed = _AUDIO_FIELDS[action]
    unknown = sorted(set(body) - allowed) if allowed else []
    if unknown:
        # sound_effect is strict: no other fields (wire reference §8.1).
        return _flat_error(400, "invalid_request", f"unknown field(s): {', '.join(unknown)}")
    return None


# The fields an audio route takes; empty: not checked (wire reference §8.1).
_AUDIO_FIELDS: dict[str, frozenset[str]] = {
    "TEXT_TO_SPEECH": frozenset(),
    "SOUND_EFFECT": frozenset({"model", "promptText", "duration", "loop"}),
}
