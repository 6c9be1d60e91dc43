"""Sender against real loopback aiohttp sinks: retries, timing, encodings, tracing, metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from multidict import CIMultiDict
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from kevents import cloudevent, metrics, retries, sender, settings, tracing


class FakeClock:
    """Virtual time: `sleep` records the wait and advances instantly."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []
        self.start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t - 1000.0)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@dataclasses.dataclass
class Seen:
    headers: CIMultiDict[str]
    body: bytes
    peer: object


@dataclasses.dataclass
class Sink:
    url: str = ""
    seen: list[Seen] = dataclasses.field(default_factory=list)
    script: list[web.StreamResponse] = dataclasses.field(default_factory=list)
    hold: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(Seen(CIMultiDict(request.headers), await request.read(), peer))
        if self.hold is not None:
            await self.hold.wait()
        if self.script:
            return self.script.pop(0)
        return web.Response(status=202)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    state = Sink()
    app = web.Application()
    app.router.add_post("/", state.handle)
    app_runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await app_runner.setup()
    site = web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{app_runner.addresses[0][1]}/"
    yield state
    await app_runner.cleanup()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def make_sender(
    clock: FakeClock, registry: CollectorRegistry
) -> AsyncIterator[Callable[..., sender.Sender]]:
    made: list[sender.Sender] = []
    sender_metrics = metrics.SenderMetrics(registry, namespace="default", name="src")

    def make(**kwargs: object) -> sender.Sender:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("sender_metrics", sender_metrics)
        s = sender.Sender(**kwargs)  # type: ignore[arg-type]
        made.append(s)
        return s

    yield make
    for s in made:
        await s.close()


def event(**extensions: str) -> cloudevent.CloudEvent:
    return cloudevent.build(
        "dev.knative.sources.ping", "/apis/v1/namespaces/default/pingsources/p", {"n": 1},
        id="evt-1", datacontenttype="application/json", extensions=extensions,
    )  # fmt: skip


EXPONENTIAL = retries.RetryPolicy(retry=4, backoff_delay=0.2)


async def test_503_twice_then_202_is_delivered_with_exact_backoff(
    sink: Sink, clock: FakeClock, make_sender: Callable[..., sender.Sender],
    registry: CollectorRegistry,
) -> None:  # fmt: skip
    sink.script = [web.Response(status=503), web.Response(status=503)]
    result = await make_sender(policy=EXPONENTIAL).send(event(), sink.url)
    assert result.ok and result.status == 202
    assert result.attempts == 3
    assert clock.sleeps == pytest.approx([0.2, 0.4])
    assert result.duration == pytest.approx(0.6)
    assert len(sink.seen) == 3
    assert registry.get_sample_value(
        "kevents_send_retries_total", {"response_code_class": "5xx"}
    ) == 2  # fmt: skip
    assert registry.get_sample_value(
        "kevents_events_sent_total", {"result": "delivered", "response_code_class": "2xx"}
    ) == 1  # fmt: skip


async def test_400_is_not_retried_and_counted_as_failed(
    sink: Sink, clock: FakeClock, make_sender: Callable[..., sender.Sender],
    registry: CollectorRegistry,
) -> None:  # fmt: skip
    sink.script = [web.Response(status=400, text="bad event")]
    result = await make_sender(policy=EXPONENTIAL).send(event(), sink.url)
    assert (result.ok, result.status, result.attempts) == (False, 400, 1)
    assert result.body == b"bad event"
    assert result.error == "status 400"
    assert clock.sleeps == []
    assert registry.get_sample_value(
        "kevents_events_sent_total", {"result": "failed", "response_code_class": "4xx"}
    ) == 1  # fmt: skip


async def test_linear_backoff_on_real_sink(
    sink: Sink, clock: FakeClock, make_sender: Callable[..., sender.Sender]
) -> None:
    sink.script = [web.Response(status=500) for _ in range(3)]
    policy = retries.RetryPolicy(
        retry=3, backoff_policy=retries.BackoffPolicy.LINEAR, backoff_delay=1.0
    )
    result = await make_sender(policy=policy).send(event(), sink.url)
    assert result.ok and result.attempts == 4
    assert clock.sleeps == [1.0, 2.0]  # the first linear retry is immediate: no sleep at all


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("3", 3.0), ("Sun, 01 Mar 2026 12:00:05 GMT", 5.0), ("600", 60.0)],
    ids=["seconds", "http-date", "capped"],
)
async def test_retry_after_from_the_sink_is_honoured(
    sink: Sink, clock: FakeClock, make_sender: Callable[..., sender.Sender],
    retry_after: str, expected: float,
) -> None:  # fmt: skip
    sink.script = [web.Response(status=429, headers={"Retry-After": retry_after})]
    result = await make_sender(policy=EXPONENTIAL).send(event(), sink.url)
    assert result.ok and result.attempts == 2
    assert clock.sleeps == [expected]


NO_DELIVERY_SPEC = retries.RetryPolicy.from_delivery_spec({})


@pytest.mark.parametrize(
    ("answers", "attempts", "status", "sleeps"),
    [
        ([(429, "3")], 2, 202, [3.0]),
        ([(503, "1"), (429, "600")], 3, 202, [1.0, 60.0]),
        ([(429, "1"), (429, "1"), (429, "1")], 3, 429, [1.0, 1.0]),
        ([(429, None)], 1, 429, []),
        ([(503, None)], 1, 503, []),
        ([(429, "soon")], 1, 429, []),
        ([(500, "1")], 1, 500, []),
    ],
    ids=[
        "429-retry-after-then-202", "503-then-429-capped-then-202", "budget-of-two-retries",
        "429-without-retry-after", "503-without-retry-after", "unparsable-retry-after",
        "500-is-not-throttling",
    ],
)  # fmt: skip
async def test_without_delivery_spec_throttling_answers_get_a_small_budget(
    sink: Sink, clock: FakeClock, make_sender: Callable[..., sender.Sender],
    answers: list[tuple[int, str | None]], attempts: int, status: int, sleeps: list[float],
) -> None:  # fmt: skip
    """No `delivery` = Knative's 0 retries, except that a sink answering 429/503 with a
    Retry-After is retried after the wait it asked for (capped), at most twice."""
    sink.script = [
        web.Response(status=code, headers={"Retry-After": after} if after else {})
        for code, after in answers
    ]
    result = await make_sender(policy=NO_DELIVERY_SPEC).send(event(), sink.url)
    assert (result.status, result.attempts) == (status, attempts)
    assert len(sink.seen) == attempts
    assert clock.sleeps == sleeps


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_connection_refused_is_retried_then_reported(
    clock: FakeClock, make_sender: Callable[..., sender.Sender], registry: CollectorRegistry
) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = await make_sender(policy=retries.RetryPolicy(retry=2, backoff_delay=0.1)).send(
        event(), url
    )
    assert result.status is None and not result.ok
    assert result.attempts == 3
    assert result.error is not None and "ClientConnectorError" in result.error
    assert clock.sleeps == pytest.approx([0.1, 0.2])
    assert registry.get_sample_value(
        "kevents_events_sent_total", {"result": "failed", "response_code_class": "none"}
    ) == 1  # fmt: skip


async def test_per_attempt_timeout(sink: Sink, make_sender: Callable[..., sender.Sender]) -> None:
    sink.hold = asyncio.Event()
    policy = retries.RetryPolicy(retry=1, timeout=0.1)
    result = await make_sender(policy=policy).send(event(), sink.url)
    sink.hold.set()  # let the sink's handlers finish so the server closes cleanly
    assert result.status is None
    assert result.attempts == 2
    assert result.error == "no response within 0.1 s"
    assert len(sink.seen) == 2


async def test_binary_mode_by_default(
    sink: Sink, make_sender: Callable[..., sender.Sender]
) -> None:
    await make_sender().send(event(team="blue"), sink.url, headers={"Prefer": "reply"})
    [seen] = sink.seen
    assert seen.headers["ce-id"] == "evt-1"
    assert seen.headers["ce-type"] == "dev.knative.sources.ping"
    assert seen.headers["ce-team"] == "blue"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Prefer"] == "reply"
    assert json.loads(seen.body) == {"n": 1}
    received = cloudevent.decode(seen.headers, seen.body)
    assert received.get_attributes() == event(team="blue").get_attributes() | {
        "time": received.get_time()
    }


async def test_structured_mode_on_request(
    sink: Sink, make_sender: Callable[..., sender.Sender]
) -> None:
    await make_sender().send(event(), sink.url, encoding=cloudevent.Encoding.STRUCTURED)
    [seen] = sink.seen
    assert seen.headers["Content-Type"] == "application/cloudevents+json"
    assert "ce-id" not in seen.headers
    assert json.loads(seen.body)["id"] == "evt-1"


async def test_event_without_data_type_gets_no_invented_content_type(
    sink: Sink, make_sender: Callable[..., sender.Sender]
) -> None:
    await make_sender().send(cloudevent.build("t", "s", id="x"), sink.url)
    [seen] = sink.seen
    assert "Content-Type" not in seen.headers
    assert cloudevent.decode(seen.headers, seen.body).get_datacontenttype() is None


async def test_adapter_settings_apply_overrides_namespace_and_timeout(
    sink: Sink, clock: FakeClock
) -> None:
    adapter = settings.AdapterSettings.from_env({
        "K_SINK": sink.url, "NAMESPACE": "team-a", "K_SINK_TIMEOUT": "7",
        "K_CE_OVERRIDES": '{"extensions":{"env":"prod","team":"blue"}}',
    })  # fmt: skip
    s = sender.Sender.from_settings(adapter, policy=retries.RetryPolicy(), clock=clock)
    try:
        assert s.policy.timeout == 7.0
        await s.send(event(team="red"), adapter.sink)
    finally:
        await s.close()
    [seen] = sink.seen
    assert seen.headers["ce-env"] == "prod"
    assert seen.headers["ce-team"] == "blue"  # overrides overwrite the event's own value
    assert seen.headers["Kn-Namespace"] == "team-a"


async def test_trace_headers_reach_the_sink_and_a_span_is_recorded(
    sink: Sink, make_sender: Callable[..., sender.Sender]
) -> None:
    exporter = InMemorySpanExporter()
    provider = tracing.make_provider(
        tracing.TracingConfig(debug=True), service_name="src", exporter=exporter
    )
    sink.script = [web.Response(status=503)]
    s = make_sender(tracer_provider=provider, policy=retries.RetryPolicy(retry=1))
    await s.send(event(), sink.url)
    provider.shutdown()
    spans = exporter.get_finished_spans()
    assert len(spans) == 2 == len(sink.seen)
    for span, seen in zip(spans, sink.seen, strict=True):
        ctx = span.get_span_context()
        assert ctx is not None
        assert seen.headers["traceparent"][:-2] == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-"
        assert int(seen.headers["traceparent"][-2:], 16) & 0x01  # sampled
        assert seen.headers["X-B3-TraceId"] == f"{ctx.trace_id:032x}"
        assert seen.headers["X-B3-SpanId"] == f"{ctx.span_id:016x}"
        assert span.attributes is not None
        assert span.attributes["cloudevents.event_id"] == "evt-1"
    assert spans[0].attributes is not None and spans[1].attributes is not None
    assert spans[0].attributes["http.response.status_code"] == 503
    assert spans[1].attributes["http.request.resend_count"] == 1
    assert not spans[0].status.is_ok and spans[1].status.is_unset


async def test_reply_body_and_headers_are_returned_and_truncated(
    sink: Sink, make_sender: Callable[..., sender.Sender]
) -> None:
    sink.script = [web.Response(status=200, body=b"x" * 100, headers={"Ce-Id": "reply-1"})]
    result = await make_sender(body_limit=10).send(event(), sink.url)
    assert result.ok
    assert result.body == b"x" * 10 and result.body_truncated
    assert result.headers["ce-id"] == "reply-1"


async def test_keep_alive_connection_is_reused(
    sink: Sink, make_sender: Callable[..., sender.Sender]
) -> None:
    s = make_sender()
    for _ in range(5):
        assert (await s.send(event(), sink.url)).status == 202
    assert len({seen.peer for seen in sink.seen}) == 1
