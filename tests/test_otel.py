"""OpenTelemetry instrumentation (``cometrunway.otel``), checked with the SDK's in-memory
span exporter and metric reader against the fake API on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from support import client_for

from cometrunway import AmbiguousSubmitError, CometRunwayError, TaskFailed, TextToVideo
from cometrunway.otel import FAILED_CREATE_SPAN, POLL_SPAN, TASK_SPAN, Instrumentation
from cometrunway.testing import FakeCometAPI, Fault, Lifecycle

# The fake says a task finished this many seconds before the wall clock the test gives.
_SEEN_LATE = 2.5


class Telemetry:
    """An SDK tracer and meter provider recording in memory."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def instrumentation(self) -> Instrumentation:
        return Instrumentation(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name == name]

    def metric(self, name: str) -> list[object]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def total(self, name: str, **attributes: str) -> float:
        points = self.metric(name)
        return sum(
            p.value  # type: ignore[attr-defined]
            for p in points
            if all(p.attributes.get(k) == v for k, v in attributes.items())  # type: ignore[attr-defined]
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    recorded = Telemetry()
    yield recorded
    recorded.tracer_provider.shutdown()
    recorded.meter_provider.shutdown()


def test_importing_and_using_the_client_does_not_import_opentelemetry() -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        import cometrunway
        from cometrunway import Client, PollPolicy, TextToVideo
        from cometrunway.testing import FakeCometAPI, Lifecycle

        async def main():
            async with FakeCometAPI(lifecycle=Lifecycle.instant()) as fake:
                poll = PollPolicy(initial_delay=0, interval=0.01, min_interval=0.005, jitter=0)
                async with Client("sk-test-key-0123456789", base_url=fake.url, poll=poll) as c:
                    task = await (await c.submit(TextToVideo("a cat")))
                    assert task.status.value == "SUCCEEDED"

        asyncio.run(main())
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
        print("loaded:", loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "loaded: []" in result.stdout


async def test_one_span_per_task_in_the_callers_trace_with_polls_as_children(
    fake_cometapi: FakeCometAPI, telemetry: Telemetry
) -> None:
    fake_cometapi.lifecycle = Lifecycle.by_polls(1, 1)
    otel = telemetry.instrumentation()
    caller = telemetry.tracer_provider.get_tracer("user-code")
    client = client_for(
        fake_cometapi, transport=otel.transport(fake_cometapi.url), on_event=otel.on_event
    )
    with caller.start_as_current_span("make two videos") as batch:
        async with client:
            handles = [await client.submit(TextToVideo(f"scene {i}")) for i in range(2)]
            for handle in handles:
                await handle

    tasks = telemetry.named(TASK_SPAN)
    assert sorted(s.attributes["cometrunway.task.id"] for s in tasks) == sorted(  # type: ignore[index]
        h.task_id for h in handles
    )
    for span in tasks:
        assert span.context.trace_id == batch.get_span_context().trace_id
        assert span.parent is not None
        assert span.parent.span_id == batch.get_span_context().span_id
        assert span.status.status_code is StatusCode.OK
        assert span.attributes["cometrunway.task.status"] == "SUCCEEDED"  # type: ignore[index]
    by_id = {s.context.span_id: s for s in tasks}
    polls = telemetry.named(POLL_SPAN)
    assert len(polls) >= 2 * 3  # queued, running, succeeded: at least three polls each
    for poll in polls:
        assert poll.parent is not None and poll.parent.span_id in by_id
        parent = by_id[poll.parent.span_id]
        assert poll.attributes["cometrunway.task.id"] == parent.attributes["cometrunway.task.id"]  # type: ignore[index]
        assert poll.end_time <= parent.end_time  # type: ignore[operator]

    assert telemetry.total("cometrunway.creates", outcome="created") == 2
    assert telemetry.total("cometrunway.polls") == len(polls)
    assert telemetry.total("cometrunway.tasks.in_flight") == 0
    assert telemetry.total("cometrunway.rate_limited") == 0


async def test_a_failed_task_ends_its_span_with_an_error(
    fake_cometapi: FakeCometAPI, telemetry: Telemetry
) -> None:
    fake_cometapi.lifecycle = Lifecycle.by_polls(1, 1).failing("bad prompt", "SAFETY.INPUT.TEXT")
    otel = telemetry.instrumentation()
    client = client_for(
        fake_cometapi, transport=otel.transport(fake_cometapi.url), on_event=otel.on_event
    )
    async with client:
        handle = await client.submit(TextToVideo("forbidden"))
        with pytest.raises(TaskFailed):
            await handle
    (span,) = telemetry.named(TASK_SPAN)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["cometrunway.task.error_code"] == "SAFETY.INPUT.TEXT"  # type: ignore[index]
    assert telemetry.total("cometrunway.tasks.in_flight") == 0


async def test_429_answers_and_detection_latency_are_measured(
    fake_cometapi: FakeCometAPI, telemetry: Telemetry
) -> None:
    fake_cometapi.lifecycle = Lifecycle.by_polls(0, 1)
    fake_cometapi.inject("submit", Fault.rate_limited(0.001), times=1)
    fake_cometapi.inject("poll", Fault.rate_limited(0.001), times=1)
    seen_at: list[float] = []

    def late_wall() -> float:
        import time

        now = time.time() + _SEEN_LATE
        seen_at.append(now)
        return now

    otel = Instrumentation(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        wall=late_wall,
    )
    client = client_for(
        fake_cometapi, transport=otel.transport(fake_cometapi.url), on_event=otel.on_event
    )
    async with client:
        await (await client.submit(TextToVideo("a cat")))
    assert telemetry.total("cometrunway.rate_limited") == 2  # the create's and a poll's
    assert telemetry.total("cometrunway.creates", outcome="rate_limited") == 1
    assert telemetry.total("cometrunway.creates", outcome="created") == 1
    (refused,) = telemetry.named(FAILED_CREATE_SPAN)
    assert refused.status.status_code is StatusCode.ERROR
    (task,) = telemetry.named(TASK_SPAN)
    assert task.status.status_code is StatusCode.OK
    (latency,) = telemetry.metric("cometrunway.detection_latency")
    assert latency.count == 1  # type: ignore[attr-defined]
    assert _SEEN_LATE <= latency.sum < _SEEN_LATE + 5  # type: ignore[attr-defined]


async def test_a_refused_create_ends_its_span_at_once(
    fake_cometapi: FakeCometAPI, telemetry: Telemetry
) -> None:
    fake_cometapi.inject("submit", Fault.unauthorized(), times=1)
    otel = telemetry.instrumentation()
    client = client_for(
        fake_cometapi, transport=otel.transport(fake_cometapi.url), on_event=otel.on_event
    )
    async with client:
        with pytest.raises(CometRunwayError):
            await client.submit(TextToVideo("a cat"))
    assert telemetry.named(TASK_SPAN) == []  # no task was made
    (span,) = telemetry.named(FAILED_CREATE_SPAN)
    assert span.status.status_code is StatusCode.ERROR
    assert telemetry.total("cometrunway.creates", outcome="refused") == 1
    assert telemetry.total("cometrunway.tasks.in_flight") == 0


async def test_tasks_running_at_close_end_their_spans(
    fake_cometapi: FakeCometAPI, telemetry: Telemetry
) -> None:
    fake_cometapi.lifecycle = Lifecycle.by_polls(1000, 1000)
    otel = telemetry.instrumentation()
    client = client_for(
        fake_cometapi, transport=otel.transport(fake_cometapi.url), on_event=otel.on_event
    )
    async with client:
        await client.submit(TextToVideo("a long one"))
    (span,) = telemetry.named(TASK_SPAN)
    assert span.attributes["cometrunway.task.unfinished"] is True  # type: ignore[index]
    assert telemetry.total("cometrunway.tasks.in_flight") == 0


async def test_auto_instrumented_http_spans_nest_under_the_task(
    fake_cometapi: FakeCometAPI, telemetry: Telemetry
) -> None:
    aiohttp_client = pytest.importorskip("opentelemetry.instrumentation.aiohttp_client")
    instrumentor = aiohttp_client.AioHttpClientInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        fake_cometapi.lifecycle = Lifecycle.by_polls(1, 1)
        otel = telemetry.instrumentation()
        client = client_for(
            fake_cometapi, transport=otel.transport(fake_cometapi.url), on_event=otel.on_event
        )
        async with client:
            await (await client.submit(TextToVideo("a cat")))
    finally:
        instrumentor.uninstrument()

    (task,) = telemetry.named(TASK_SPAN)
    poll_ids = {s.context.span_id for s in telemetry.named(POLL_SPAN)}
    ours = {TASK_SPAN, POLL_SPAN}
    http = [s for s in telemetry.spans.get_finished_spans() if s.name not in ours]
    assert len(http) == 1 + len(poll_ids)  # the create and every poll
    for span in http:
        assert span.context.trace_id == task.context.trace_id  # no orphan root traces
        assert span.parent is not None
        assert span.parent.span_id in poll_ids | {task.context.span_id}


async def test_an_ambiguous_create_is_counted_as_such(
    fake_cometapi: FakeCometAPI, telemetry: Telemetry
) -> None:
    fake_cometapi.inject("submit", Fault.server_error(500, after_create=True), times=1)
    otel = telemetry.instrumentation()
    client = client_for(
        fake_cometapi, transport=otel.transport(fake_cometapi.url), on_event=otel.on_event
    )
    async with client:
        with pytest.raises(AmbiguousSubmitError):
            await client.submit(TextToVideo("a kite over the dunes"))
    (span,) = telemetry.named(FAILED_CREATE_SPAN)
    assert span.attributes["cometrunway.create.outcome"] == "ambiguous"  # type: ignore[index]
    assert telemetry.total("cometrunway.creates", outcome="ambiguous") == 1
    assert telemetry.total("cometrunway.tasks.in_flight") == 0
