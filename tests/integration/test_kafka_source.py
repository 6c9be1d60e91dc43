"""The KafkaSource adapter against the real broker and a real HTTP sink: Knative's events in
order per partition, offsets committed only after the sink (or the dead-letter sink) took a
record, nothing lost while the sink is down or the adapter is killed."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from kevents import cloudevent, kafka, tracing
from tests import waiting
from tests.integration import kafkasource_harness as harness
from tests.kafka import KafkaBroker

pytestmark = pytest.mark.cluster  # the local cluster's Kafka broker

Topics = Callable[[int], Awaitable[str]]


@pytest.fixture
def bootstrap(kafka_broker: KafkaBroker) -> str:
    return kafka_broker.bootstrap


@pytest.fixture
async def new_topic(kafka_broker: KafkaBroker) -> AsyncIterator[Topics]:
    """Fresh topics with the given partition count, deleted after the test."""
    made: list[str] = []

    async def make(partitions: int) -> str:
        name = f"kafkasource-{uuid.uuid4().hex[:10]}"
        await kafka_broker.create(name, partitions=partitions)
        made.append(name)
        return name

    yield make
    for name in made:
        await kafka.delete_topic(kafka_broker.config(), name)


def _group() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


async def test_earliest_delivers_every_record_in_order_per_partition_once(
    bootstrap: str, new_topic: Topics
) -> None:
    topic = await new_topic(3)
    conf = kafka.client_config(bootstrap)
    await harness.produce(conf, topic, 300, partitions=3, headers=(("build", b"7"),))
    group = _group()
    async with harness.serving(harness.Sink()) as sink:
        env = harness.adapter_env(bootstrap, topic, group, sink.url)
        async with harness.in_process(env) as running:
            await waiting.until(lambda: len(sink.events) >= 300, within=60)
            await waiting.until(
                lambda: running.sample("kevents_kafkasource_commits_total", {"result": "ok"}) > 0
            )
        assert sorted(sink.ids()) == sorted(
            f"partition:{i % 3}/offset:{i // 3}" for i in range(300)
        )
        offsets = harness.per_partition(sink.events)
        assert offsets == {p: list(range(100)) for p in range(3)}
        first = next(e for e in sink.events if e.get_id() == "partition:1/offset:0")
        attributes = first.get_attributes()
        assert attributes["type"] == "dev.knative.kafka.event"
        assert attributes["source"] == f"/apis/v1/namespaces/ci/kafkasources/builds#{topic}"
        assert attributes["subject"] == "partition:1#0"
        assert attributes["key"] == "k1"
        assert attributes["kafkaheaderbuild"] == "7"
        assert attributes["datacontenttype"] == "application/json"
        assert first.get_data() == {"n": 1}
        # Restarted with the same group: only what came after is delivered (all committed).
        await harness.produce(conf, topic, 1, partitions=1, start=1000)
        async with harness.in_process(env):
            await waiting.until(lambda: len(sink.events) >= 301, within=60)
        assert sink.events[-1].get_data() == {"n": 1000}
        assert len(sink.events) == 301


async def test_sink_down_loses_nothing_and_commits_nothing_past_the_held_record(
    bootstrap: str, new_topic: Topics
) -> None:
    topic = await new_topic(2)
    conf = kafka.client_config(bootstrap)
    group = _group()
    async with harness.serving(harness.Sink(status=503)) as sink:
        env = harness.adapter_env(bootstrap, topic, group, sink.url)
        async with harness.in_process(env) as running:
            await harness.produce(conf, topic, 200, partitions=2)
            await waiting.until(
                lambda: running.sample(
                    "kevents_kafkasource_record_holds_total", {"topic": topic}
                ) >= 2,
                within=60,
            )  # fmt: skip
            assert sink.events == []
            assert running.sample("kevents_kafkasource_commits_total", {"result": "ok"}) == 0

            def lag() -> dict[str, float]:
                return {
                    p: running.sample(
                        "kevents_kafkasource_consumer_lag", {"topic": topic, "partition": p}
                    )
                    for p in ("0", "1")
                }  # fmt: skip

            await waiting.until(lambda: lag() == {"0": 100, "1": 100}, within=30)
            sink.status = 202
            await waiting.until(lambda: len(sink.events) >= 200, within=60)
            await waiting.until(lambda: lag() == {"0": 0, "1": 0}, within=30)
        assert sorted(sink.ids()) == sorted(
            f"partition:{i % 2}/offset:{i // 2}" for i in range(200)
        )
        assert harness.per_partition(sink.events) == {p: list(range(100)) for p in range(2)}


async def test_refused_events_go_to_the_dead_letter_sink_with_knatives_extensions(
    bootstrap: str, new_topic: Topics
) -> None:
    topic = await new_topic(1)
    conf = kafka.client_config(bootstrap)
    async with (
        harness.serving(harness.Sink(status=400)) as sink,
        harness.serving(harness.Sink()) as dead,
    ):
        env = harness.adapter_env(bootstrap, topic, _group(), sink.url,
                                  K_DEAD_LETTER_SINK=dead.url)  # fmt: skip
        async with harness.in_process(env) as running:
            await harness.produce(conf, topic, 5)
            await waiting.until(lambda: len(dead.events) >= 5, within=60)
            await waiting.until(
                lambda: running.sample(
                    "kevents_kafkasource_records_finished_total",
                    {"topic": topic, "result": "dead_lettered"},
                ) == 5
            )  # fmt: skip
        assert [e.get_id() for e in dead.events] == [f"partition:0/offset:{i}" for i in range(5)]
        attributes = dead.events[0].get_attributes()
        assert attributes["knativeerrorcode"] == "400"
        assert attributes["knativeerrordest"] == sink.url


async def test_unordered_delivers_a_partition_concurrently(
    bootstrap: str, new_topic: Topics
) -> None:
    topic = await new_topic(1)
    conf = kafka.client_config(bootstrap)
    await harness.produce(conf, topic, 100)
    async with harness.serving(harness.Sink(delay=0.05)) as sink:
        env = harness.adapter_env(bootstrap, topic, _group(), sink.url, KAFKA_ORDERING="unordered")
        async with harness.in_process(env):
            await waiting.until(lambda: len(sink.events) >= 100, within=60)
    assert sorted(sink.ids()) == sorted(f"partition:0/offset:{i}" for i in range(100))
    assert sink.most_in_flight > 1


async def test_killed_adapter_redelivers_only_the_uncommitted_window(
    bootstrap: str, new_topic: Topics
) -> None:
    topic = await new_topic(3)
    conf = kafka.client_config(bootstrap)
    total = 600
    await harness.produce(conf, topic, total, partitions=3)
    group = _group()
    async with harness.serving(harness.Sink(delay=0.005)) as sink:
        env = harness.adapter_env(bootstrap, topic, group, sink.url)
        first = await harness.process(env)
        try:
            await waiting.until(lambda: len(sink.events) >= total // 3, within=60)
            # a commit has landed (one every 0.2 s), so the kill leaves a window behind it
            done = 0
            for _ in range(100):
                if (done := await harness.committed(conf, group, topic, 3)) > 0:
                    break
                await asyncio.sleep(0.1)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        assert done > 0, "the adapter committed nothing within 10 s"
        killed_at = len(sink.events)
        second = await harness.process(env)
        try:
            await waiting.until(lambda: len(set(sink.ids())) >= total, within=90)
        finally:
            second.send_signal(signal.SIGTERM)
            assert await second.wait() == 0
    ids = sink.ids()
    duplicates = len(ids) - len(set(ids))
    print(f"\nkilled after {killed_at} of {total} deliveries: {duplicates} redelivered")  # noqa: T201
    assert set(ids) == {f"partition:{i % 3}/offset:{i // 3}" for i in range(total)}
    # Only the uncommitted window comes again: what was delivered after the last commit,
    # never what had been committed before the kill.
    assert duplicates <= killed_at - done
    for offsets in harness.per_partition(sink.events).values():
        # a redelivery restarts from the committed position once: the offsets delivered
        # twice are one contiguous run, none three times
        backwards = sum(1 for a, b in zip(offsets, offsets[1:], strict=False) if b <= a)
        assert backwards <= 1
        again = sorted({o for o in offsets if offsets.count(o) > 1})
        assert all(offsets.count(o) == 2 for o in again)
        assert not again or again == list(range(again[0], again[-1] + 1))


async def test_two_consumers_share_the_partitions_and_one_leaving_hands_them_over(
    bootstrap: str, new_topic: Topics
) -> None:
    topic = await new_topic(4)
    conf = kafka.client_config(bootstrap)
    group = _group()
    async with harness.serving(harness.Sink()) as sink:
        env = harness.adapter_env(bootstrap, topic, group, sink.url)
        async with harness.in_process(env) as first:
            async with harness.in_process(env) as second:
                await waiting.until(
                    lambda: (
                        first.sample("kevents_kafkasource_assigned_partitions") == 2
                        and second.sample("kevents_kafkasource_assigned_partitions") == 2
                    ),
                    within=60,
                )
                await harness.produce(conf, topic, 200, partitions=4)
                await waiting.until(lambda: len(sink.events) >= 200, within=60)
                for running in (first, second):
                    delivered = running.sample(
                        "kevents_kafkasource_records_finished_total",
                        {"topic": topic, "result": "delivered"},
                    )
                    assert delivered == 100
            # the second left the group (SIGTERM-like stop): its partitions move at once
            await waiting.until(
                lambda: first.sample("kevents_kafkasource_assigned_partitions") == 4, within=60
            )
            await harness.produce(conf, topic, 200, partitions=4, start=200)
            await waiting.until(lambda: len(sink.events) >= 400, within=60)
    ids = sink.ids()
    assert len(ids) == len(set(ids)) == 400


async def test_a_cloudevent_records_trace_continues_through_the_source_to_the_sink(
    bootstrap: str, new_topic: Topics
) -> None:
    topic = await new_topic(1)
    conf = kafka.client_config(bootstrap)
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    event = cloudevent.build(
        "dev.knative.ci.build", "/ci", {"build": 1}, id="traced-1",
        extensions={"traceparent": f"00-{trace_id}-{parent_id}-01", "buildstatus": "pass"},
    )  # fmt: skip
    async with kafka.Producer(conf) as producer:
        await producer.send_message(topic, kafka.encode_event(event))
    exporter = InMemorySpanExporter()
    provider = tracing.make_provider(
        tracing.parse_config({"backend": "zipkin", "zipkin-endpoint": "http://127.0.0.1:9/x",
                              "sample-rate": "1"}),
        service_name="kafka-source", exporter=exporter,
    )  # fmt: skip
    try:
        async with harness.serving(harness.Sink()) as sink:
            env = harness.adapter_env(bootstrap, topic, _group(), sink.url)
            async with harness.in_process(env, tracer_provider=provider):
                await waiting.until(lambda: len(sink.events) >= 1, within=60)
    finally:
        provider.shutdown()
    [got] = sink.events
    assert (got.get_id(), got.get_extension("buildstatus")) == ("traced-1", "pass")
    headers = sink.headers[0]
    assert headers["traceparent"].split("-")[1] == trace_id
    assert headers["x-b3-traceid"] == trace_id
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == int(trace_id, 16)]
    process = next(s for s in spans if s.name == f"{topic} process")
    post = next(s for s in spans if s.name == "POST")
    assert process.kind is SpanKind.CONSUMER
    assert process.parent is not None and process.parent.span_id == int(parent_id, 16)
    assert post.parent is not None and post.parent.span_id == process.context.span_id
    assert format(post.context.span_id, "016x") == headers["traceparent"].split("-")[2]
