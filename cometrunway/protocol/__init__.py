"""The sans-I/O core: every wire fact, and no I/O.

* ``seam`` — the transport's two values, ``HTTPRequest`` and ``HTTPResponse``;
* ``build`` — requests: headers (the only ``Authorization`` header), create bodies, polls,
  task-id and route validation;
* ``answers`` — answers → errors (a table of envelope recognisers) and what a failure
  allows (``submit_disposition``, ``poll_disposition``), ``Retry-After``;
* ``tasks`` — envelopes → task ids and ``Task`` (status vocabularies, queued-ness, progress,
  outputs, timestamps, route of an answer).

Every envelope of the wire reference is accepted (§1.A, §1.5, §1.10, §3, §6). This package
never awaits and never imports asyncio or aiohttp (an import-linter contract).
"""

from __future__ import annotations

from .answers import (
    PollDisposition,
    SubmitDisposition,
    error_from_response,
    parse_retry_after,
    poll_disposition,
    submit_disposition,
)
from .build import (
    DEFAULT_CALLBACK_URL,
    DEFAULT_RUNWAY_VERSION,
    POLL_ROUTES,
    build_poll,
    build_submit,
    check_poll_route,
    check_task_id,
)
from .seam import REDACTED, HTTPRequest, HTTPResponse, redact_answer, redact_text
from .tasks import (
    NOT_FOUND_CODE,
    LostTask,
    is_queued,
    map_status,
    normalize_progress,
    parse_poll,
    parse_submit,
    poll_route_of,
)

__all__ = [
    "DEFAULT_CALLBACK_URL",
    "DEFAULT_RUNWAY_VERSION",
    "NOT_FOUND_CODE",
    "POLL_ROUTES",
    "REDACTED",
    "HTTPRequest",
    "HTTPResponse",
    "LostTask",
    "PollDisposition",
    "SubmitDisposition",
    "build_poll",
    "build_submit",
    "check_poll_route",
    "check_task_id",
    "error_from_response",
    "is_queued",
    "map_status",
    "normalize_progress",
    "parse_poll",
    "parse_retry_after",
    "parse_submit",
    "poll_disposition",
    "poll_route_of",
    "redact_answer",
    "redact_text",
    "submit_disposition",
]

from .answers import _text as _text  # read by the protocol tests
