"""An aiohttp access logger that never writes the callback token.

The client's callback URL carries a secret ``token`` query parameter (the receiver checks it:
callbacks are unsigned). aiohttp's default access log prints each request line with its query
string, so every delivery would write the secret to the server's log. This logger writes the
same line with every query value replaced by ``***``. Use it for the server that receives
callbacks: ``web.run_app(app, access_log_class=RedactingAccessLogger)`` or
``web.AppRunner(app, access_log_class=RedactingAccessLogger)``.
"""

from __future__ import annotations

import datetime as _dt
import logging
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = ["RedactingAccessLogger", "redacted_path"]


def redacted_path(path_qs: str) -> str:
    """``path_qs`` with each query value replaced by ``***`` (names kept, for debugging)."""
    path, sep, query = path_qs.partition("?")
    if not sep:
        return path
    pairs = [(name, "***") for name, _ in parse_qsl(query, keep_blank_values=True)]
    return f"{path}?{urlencode(pairs, safe='*')}"


class RedactingAccessLogger(AbstractAccessLogger):
    """Logs ``remote "METHOD /path?token=*** HTTP/x.y" status size time`` at INFO."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        version = f"{request.version.major}.{request.version.minor}"
        self.logger.info(
            '%s [%s] "%s %s HTTP/%s" %d %s %.6f',
            request.remote or "-",
            _dt.datetime.now(_dt.UTC).strftime("%d/%b/%Y:%H:%M:%S %z"),
            request.method,
            redacted_path(request.path_qs),
            version,
            response.status,
            response.body_length,
            time,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
