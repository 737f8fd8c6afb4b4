"""The seam's two values: ``HTTPRequest`` (what the transport sends) and ``HTTPResponse``
(what it got back). Plain data; the repr of a request never shows the API key."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from attrs import field, frozen

__all__ = ["REDACTED", "HTTPRequest", "HTTPResponse", "redact_answer", "redact_text"]


def _redact_headers(headers: tuple[tuple[str, str], ...]) -> str:
    return repr(tuple((k, "<redacted>" if k.lower() == "authorization" else v) for k, v in headers))


@frozen
class HTTPRequest:
    """One request for the transport. ``path`` is joined to the client's base URL.

    The repr hides the ``Authorization`` header: the key never reaches a log line.
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = field(repr=_redact_headers)
    body: bytes | None = None
    kind: Literal["submit", "poll"] = "poll"

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)

    def json(self) -> Any:
        return None if self.body is None else json.loads(self.body)


def _header_dict(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    # One plain copy, names as received: a single object per answer, built in C.
    return dict(headers.items() if isinstance(headers, Mapping) else headers)


@frozen
class HTTPResponse:
    """One answer from the transport: status, headers, raw body.

    Headers are kept as received and matched case-insensitively when asked for: most answers
    are read without looking at a single header, so none are normalised up front.
    """

    status: int
    _headers: Mapping[str, str] = field(factory=dict, converter=_header_dict)
    body: bytes = b""

    @property
    def headers(self) -> Mapping[str, str]:
        """Every header, names lower-cased (the last of a repeated name wins)."""
        return {str(k).lower(): str(v) for k, v in self._headers.items()}

    def header(self, name: str) -> str | None:
        lname = name.lower()
        found = None
        for key, value in self._headers.items():
            if str(key).lower() == lname:
                found = str(value)  # the last wins, as in ``headers``
        return found


#: What stands in for the key wherever a server echoed it back.
REDACTED = "***"


def redact_answer(response: HTTPResponse, *secrets: str) -> HTTPResponse:
    """``response`` with every copy of each of ``secrets`` (the API key, echoed back by a
    broken or hostile server in its body or a header) replaced by ``***``, so nothing parsed
    from it — an error message, a journal row, ``Task.raw`` — can carry the key on."""
    body = response.body
    values: str | None = None  # every header value in one text, read once if needed
    echoed: list[str] = []
    for secret in secrets:
        if not secret:
            continue
        if secret.encode() not in body:
            if values is None:
                values = "\n".join(map(str, response._headers.values()))
            if secret not in values:
                continue
        echoed.append(secret)
    if not echoed:
        return response
    headers = {k: str(v) for k, v in response._headers.items()}
    for secret in echoed:
        headers = {k: v.replace(secret, REDACTED) for k, v in headers.items()}
        body = body.replace(secret.encode(), REDACTED.encode())
    return HTTPResponse(response.status, headers, body)


def redact_text(text: str, secret: str) -> str:
    """``text`` without the key."""
    return text.replace(secret, REDACTED) if secret and secret in text else text
