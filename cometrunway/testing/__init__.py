"""A fake CometAPI for tests: every Runway route, in-process, on 127.0.0.1.

``FakeCometAPI`` is a real aiohttp server that answers like CometAPI's Runway routes as their
docs describe them (the "CometAPI quirks" page lists every variant), so a client, a batch
pipeline or a webhook receiver can be tested end to end without the network or money::

    from cometrunway import Client, TextToVideo
    from cometrunway.testing import FakeCometAPI, Fault, Lifecycle

    async with FakeCometAPI(lifecycle=Lifecycle.by_polls(queued=1, running=2)) as fake:
        async with Client("any-key", base_url=fake.url) as client:
            fake.inject("submit", Fault.server_error(500, after_create=True))
            ...

What it gives a test:

* every create, poll, cancel and output route, in every documented envelope variant
  (create A1/A2/A3 and ``{"id"}``, feed F1/F2/F3, tasks T1/T2), chosen per instance and
  changeable while it runs;
* scripted task lives (``Lifecycle``): by poll count (deterministic, no sleeping) and/or by
  the fake's clock (injectable), succeeding, failing or cancelled, with a ``task_not_exist``
  window after the create;
* faults (``Fault``) queued per kind of route: 429 with or without ``Retry-After``, 5xx
  before or after the task is created, dropped connections, slow answers, garbage, HTML;
* records of every request, task and callback, for assertions;
* callbacks posted to ``/runway/pro/*`` tasks' ``callback_url`` (loopback hosts only by
  default), and ``/cdn/...`` output files (real tiny MP4/PNG/MP3 media by default, or
  deterministic bytes of a chosen size) with ``Range`` support;
* Runway's cost fields, ``DELETE`` cancels, and every "not visible yet" shape (§8).

``python -m cometrunway.testing --port 8080`` runs it in its own process: it prints its URL on
one line and serves until SIGINT or SIGTERM; ``GET /_fake/tasks`` then lists the tasks it
created, for counting on the server's side. Nothing in the package imports this module.

The package's modules: ``_fake`` (the server), ``_values`` (lifecycles, faults, records),
``_envelopes`` (answer bodies), ``_pipeline`` (recording and faults), ``_http``, ``_lives``,
``_media`` (output files, ``media/``), ``_cli`` (``python -m``).
"""

from __future__ import annotations

from ._cli import main
from ._fake import FakeCometAPI
from ._mock import MockTransport
from ._values import NOT_FOUND_SHAPES, CallbackRecord, Fault, Lifecycle, RecordedRequest, TaskRecord

__all__ = [
    "NOT_FOUND_SHAPES",
    "CallbackRecord",
    "FakeCometAPI",
    "Fault",
    "Lifecycle",
    "MockTransport",
    "RecordedRequest",
    "TaskRecord",
    "main",
]
