"""Building requests: headers (the only place the ``Authorization`` header is made), the
create body of every request model, and the poll of a task on its route."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from .._converter import request_body
from ..models import PollRoute, Request
from .seam import HTTPRequest

__all__ = [
    "DEFAULT_CALLBACK_URL",
    "DEFAULT_RUNWAY_VERSION",
    "POLL_ROUTES",
    "build_cancel",
    "build_poll",
    "build_submit",
    "check_poll_route",
    "check_task_id",
]

DEFAULT_RUNWAY_VERSION = "2024-11-06"
# `.invalid` never resolves (RFC 2606), so results are never posted to a stranger; the
# wrapper refuses a create without callback_url (wire reference §3.1 callback_url_empty).
DEFAULT_CALLBACK_URL = "https://callback.invalid/"

# Where a task is polled: "feed" (POST /runway/feed) for /runway/pro/* creates, "tasks"
# (GET /runwayml/v1/tasks/{id}) for /runwayml/v1/* creates (wire §1.5, §1.10).
POLL_ROUTES: tuple[PollRoute, ...] = ("feed", "tasks")


def check_task_id(task_id: object) -> str:
    """``task_id`` stripped, or a ``ValueError`` naming it."""
    if not isinstance(task_id, str) or not task_id.strip():
        raise ValueError(f"task_id must be a non-empty string, got {task_id!r}")
    return task_id.strip()


def check_poll_route(route: object) -> PollRoute:
    """``route`` if it is a poll route, or a ``ValueError`` naming the choices."""
    if route == "feed":
        return "feed"
    if route == "tasks":
        return "tasks"
    raise ValueError(f"route must be 'feed' or 'tasks', got {route!r}")


def _headers(
    api_key: str, runway_version: str | None, json_body: bool
) -> tuple[tuple[str, str], ...]:
    if not isinstance(api_key, str) or not api_key.strip():
        raise ValueError("api_key must be a non-empty string (your CometAPI key)")
    headers = [("Authorization", f"Bearer {api_key}"), ("Accept", "application/json")]
    # Sent on every route: required on /runwayml/v1 creates, harmless elsewhere (§0, §6 C5).
    if runway_version:
        headers.append(("X-Runway-Version", runway_version))
    if json_body:
        headers.append(("Content-Type", "application/json"))
    return tuple(headers)


# One encoder for every body: json.dumps builds a new one per call for non-default options.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _dumps(body: Any) -> bytes:
    return _ENCODER.encode(body).encode()


def build_submit(
    request: Request,
    *,
    api_key: str,
    runway_version: str | None = DEFAULT_RUNWAY_VERSION,
    callback_url: str | None = None,
) -> HTTPRequest:
    """The create request for any request model.

    ``callback_url`` is the client's; the request's own wins, and with neither the inert
    ``https://callback.invalid/`` is sent (only ``/runway/pro/*`` routes take one, §4).
    """
    path = getattr(type(request), "path", None)
    if path is None:
        raise TypeError(f"not a cometrunway request model: {request!r}")
    headers = _headers(api_key, runway_version, True)
    body = request_body(request, callback_url=callback_url or DEFAULT_CALLBACK_URL)
    return HTTPRequest("POST", path, headers, _dumps(body), kind="submit")


def build_poll(
    task_id: str,
    route: PollRoute = "feed",
    *,
    api_key: str,
    runway_version: str | None = DEFAULT_RUNWAY_VERSION,
) -> HTTPRequest:
    """``POST /runway/feed`` (route "feed") or ``GET /runwayml/v1/tasks/{id}`` ("tasks")."""
    check_task_id(task_id)
    if check_poll_route(route) == "feed":
        headers = _headers(api_key, runway_version, True)
        return HTTPRequest("POST", "/runway/feed", headers, _dumps({"task_id": task_id}))
    headers = _headers(api_key, runway_version, False)
    return HTTPRequest("GET", f"/runwayml/v1/tasks/{quote(task_id, safe='')}", headers)


def build_cancel(
    task_id: str, *, api_key: str, runway_version: str | None = DEFAULT_RUNWAY_VERSION
) -> HTTPRequest:
    """``DELETE /runwayml/v1/tasks/{id}``: Runway's cancel of an official-format task (wire
    §8.6; undocumented by CometAPI, which may answer 404/405)."""
    check_task_id(task_id)
    headers = _headers(api_key, runway_version, False)
    return HTTPRequest("DELETE", f"/runwayml/v1/tasks/{quote(task_id.strip(), safe='')}", headers)
