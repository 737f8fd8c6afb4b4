"""OpenTelemetry traces and metrics for a client: ``pip install "cometrunway[otel]"``.

Nothing in the core imports this module (or ``opentelemetry``): a client pays for tracing
only when it is given an ``Instrumentation``, through the two public seams it already has::

    from cometrunway import Client
    from cometrunway.otel import Instrumentation

    otel = Instrumentation()  # the global tracer and meter providers unless given
    async with Client(key, transport=otel.transport(), on_event=otel.on_event) as client:
        ...

* **Traces.** One span per task (``runway task``), started when its create is sent, in the
  caller's context (so it sits in the caller's trace), and ended when the task ends: its
  status is OK for SUCCEEDED, ERROR for FAILED, CANCELLED or lost. Every poll of the task is
  a child span (``runway poll``) and runs with it current, so spans of an auto-instrumented
  HTTP client (``opentelemetry-instrumentation-aiohttp-client``) nest under the task instead
  of starting traces of their own. A create attempt answered without a task id (refused,
  a 429 the client retries, or ambiguous) ends at once as an ERROR span
  ``runway create failed``. Tasks
  still running when the client closes end with ``cometrunway.task.unfinished = true``.
* **Metrics** (meter ``cometrunway``): ``cometrunway.tasks.in_flight`` (up-down counter),
  ``cometrunway.creates`` (create requests sent, by ``outcome``), ``cometrunway.polls``,
  ``cometrunway.rate_limited`` (429 answers), and ``cometrunway.detection_latency`` (a
  histogram, seconds from the server's ``finished_at`` to the poll that saw it, for tasks
  whose answers say when they finished).

Attributes never carry the API key, prompts or URLs: task ids, routes, statuses, error codes.
Tasks followed without a create sent here (``track()``, ``resume()``, a journaled request
submitted again) have no task span: their polls are spans in the poller's context, and count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import unquote

from opentelemetry import metrics, trace
from opentelemetry.metrics import Counter, Histogram, UpDownCounter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .errors import CometRunwayError
from .events import Event, TaskFinished, TaskLost
from .protocol import (
    HTTPRequest,
    HTTPResponse,
    SubmitDisposition,
    parse_submit,
    submit_disposition,
)
from .transport import AiohttpTransport, Transport

__all__ = [
    "FAILED_CREATE_SPAN",
    "INSTRUMENTATION_NAME",
    "POLL_SPAN",
    "TASK_SPAN",
    "Instrumentation",
    "TracedTransport",
]

INSTRUMENTATION_NAME = "cometrunway"
TASK_SPAN = "runway task"
POLL_SPAN = "runway poll"
FAILED_CREATE_SPAN = "runway create failed"  # an attempt answered without a task id
_TASKS_PATH = "/runwayml/v1/tasks/"
_RATE_LIMITED = 429

WallClock = Callable[[], float]


class Instrumentation:
    """Spans and metrics for one client's tasks; see the module docstring.

    ``tracer_provider``/``meter_provider`` default to OpenTelemetry's global ones; ``wall``
    (seconds since the epoch) is what detection latency is measured with.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        wall: WallClock = time.time,
    ) -> None:
        from . import __version__

        self._tracer = trace.get_tracer(INSTRUMENTATION_NAME, __version__, tracer_provider)
        meter = metrics.get_meter(INSTRUMENTATION_NAME, __version__, meter_provider)
        self._wall = wall
        self._spans: dict[str, Span] = {}  # task id -> its open task span
        self.in_flight: UpDownCounter = meter.create_up_down_counter(
            "cometrunway.tasks.in_flight", unit="{task}", description="Tasks created, not ended"
        )
        self.creates: Counter = meter.create_counter(
            "cometrunway.creates", unit="{request}", description="Create requests sent"
        )
        self.polls: Counter = meter.create_counter(
            "cometrunway.polls", unit="{request}", description="Poll requests sent"
        )
        self.rate_limited: Counter = meter.create_counter(
            "cometrunway.rate_limited", unit="{answer}", description="429 answers received"
        )
        self.detection_latency: Histogram = meter.create_histogram(
            "cometrunway.detection_latency",
            unit="s",
            description="From the server's finished_at to the poll that saw the task end",
        )

    def transport(self, inner: Transport | str | None = None) -> TracedTransport:
        """A transport that traces through this instrumentation: wraps ``inner`` (a
        ``Transport``, or a base URL for a default ``AiohttpTransport``; None: CometAPI's)."""
        if inner is None or isinstance(inner, str):
            from ._options import DEFAULT_BASE_URL

            inner = AiohttpTransport(inner or DEFAULT_BASE_URL)
        return TracedTransport(inner, self)

    def on_event(self, event: Event) -> None:
        """``Client(on_event=...)``: ends task spans as their tasks end."""
        if isinstance(event, TaskFinished):
            span = self._spans.pop(event.task_id, None)
            if span is None:
                return
            self.in_flight.add(-1)
            span.set_attribute("cometrunway.task.status", event.status.value)
            if event.task.finished_at is not None:
                # The poll that saw the end has just answered: this is how late it looked.
                latency = max(0.0, self._wall() - event.task.finished_at.timestamp())
                self.detection_latency.record(latency, {"status": event.status.value})
            if event.task.error_code:
                span.set_attribute("cometrunway.task.error_code", event.task.error_code)
            if event.succeeded:
                span.set_status(Status(StatusCode.OK))
            else:
                span.set_status(Status(StatusCode.ERROR, event.task.error or event.status.value))
            span.end()
        elif isinstance(event, TaskLost):
            span = self._spans.pop(event.task_id, None)
            if span is None:
                return
            self.in_flight.add(-1)
            span.record_exception(event.error)
            span.set_status(Status(StatusCode.ERROR, type(event.error).__name__))
            span.end()

    def close(self) -> None:
        """End the spans of tasks still running (the client closed before they ended)."""
        spans, self._spans = self._spans, {}
        for span in spans.values():
            self.in_flight.add(-1)
            span.set_attribute("cometrunway.task.unfinished", True)
            span.end()

    # ---------------------------------------------------------------- what the transport sees

    async def _send_create(self, inner: Transport, request: HTTPRequest) -> HTTPResponse:
        # Started in the current context: the create attempt runs in a copy of the caller's.
        span = self._tracer.start_span(
            TASK_SPAN,
            kind=SpanKind.CLIENT,
            attributes={"cometrunway.route": request.path},
        )
        try:
            with trace.use_span(span, record_exception=True, set_status_on_exception=True):
                response = await inner.send(request)
        except BaseException:
            self.creates.add(1, {"outcome": "no_answer"})
            span.end()
            raise
        self._count_answer(response)
        try:
            task_id = parse_submit(response)
        except CometRunwayError as exc:
            if response.status == _RATE_LIMITED:
                outcome = "rate_limited"
            elif submit_disposition(exc) is SubmitDisposition.AMBIGUOUS:
                outcome = "ambiguous"  # may have made a task: the client raises AmbiguousSubmit
            else:
                outcome = "refused"
            self.creates.add(1, {"outcome": outcome})
            span.update_name(FAILED_CREATE_SPAN)
            span.set_attribute("cometrunway.create.outcome", outcome)
            span.set_attribute("http.response.status_code", response.status)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
            return response
        self.creates.add(1, {"outcome": "created"})
        span.set_attribute("cometrunway.task.id", task_id)
        self.in_flight.add(1)
        previous = self._spans.pop(task_id, None)
        if previous is not None:  # the same id answered twice: keep the newer span only
            previous.end()
            self.in_flight.add(-1)
        self._spans[task_id] = span
        return response

    async def _send_poll(self, inner: Transport, request: HTTPRequest) -> HTTPResponse:
        self.polls.add(1)
        task_id = polled_task_id(request)
        parent = self._spans.get(task_id) if task_id is not None else None
        context = trace.set_span_in_context(parent) if parent is not None else None
        attributes = {"cometrunway.task.id": task_id} if task_id is not None else {}
        with self._tracer.start_as_current_span(
            POLL_SPAN, context=context, kind=SpanKind.CLIENT, attributes=attributes
        ) as poll:
            response = await inner.send(request)
            poll.set_attribute("http.response.status_code", response.status)
        self._count_answer(response)
        return response

    def _count_answer(self, response: HTTPResponse) -> None:
        if response.status == _RATE_LIMITED:
            self.rate_limited.add(1)


def polled_task_id(request: HTTPRequest) -> str | None:
    """The task id a poll asks about: ``task_id`` in the ``/runway/feed`` body, or the last
    segment of ``/runwayml/v1/tasks/{id}``."""
    if request.path.startswith(_TASKS_PATH):
        return unquote(request.path[len(_TASKS_PATH) :]) or None
    try:
        body = request.json()
    except ValueError:
        return None
    task_id = body.get("task_id") if isinstance(body, dict) else None
    return task_id if isinstance(task_id, str) else None


class TracedTransport:
    """A ``Transport`` that sends through ``inner`` with spans and metrics
    (``Instrumentation.transport()`` makes one). Closing it ends the spans still open."""

    def __init__(self, inner: Transport, instrumentation: Instrumentation) -> None:
        self._inner = inner
        self._instrumentation = instrumentation

    def __repr__(self) -> str:
        return f"<TracedTransport {self._inner!r}>"

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        if request.kind == "submit":
            return await self._instrumentation._send_create(self._inner, request)
        return await self._instrumentation._send_poll(self._inner, request)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._instrumentation.close()
