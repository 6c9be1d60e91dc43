"""Helpers of the KafkaSource adapter tests: a real HTTP sink that records what it got (and
can fail on demand), records produced to a real broker, and the adapter running in-process
on the shared runner or as `python -m sources.kafka`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import confluent_kafka as ck
from aiohttp import web
from opentelemetry import trace
from prometheus_client import CollectorRegistry

from kevents import cloudevent, kafka, probes, runner, settings
from sources.kafka import adapter, config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    """An aiohttp sink on loopback: every event it accepted, in arrival order."""

    status: int = 202
    """What it answers; set to 503 (down) or 400 (refusing) while a test needs it."""
    delay: float = 0.0
    events: list[cloudevent.CloudEvent] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    """The request headers of each accepted event (lower-cased names), as `events`."""
    refused: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.status >= 300:
                self.refused += 1
                return web.Response(status=self.status)
            self.events.append(cloudevent.decode(dict(request.headers), body))
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
            return web.Response(status=self.status)
        finally:
            self.in_flight -= 1

    def ids(self) -> list[str]:
        return [e.get_id() for e in self.events]


@contextlib.asynccontextmanager
async def serving(sink: Sink) -> AsyncIterator[Sink]:
    app = web.Application()
    app.router.add_post("/", sink.handle)
    app_runner = web.AppRunner(app, access_log=None)
    await app_runner.setup()
    site = web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    port = app_runner.addresses[0][1]
    sink.url = f"http://127.0.0.1:{port}/"
    try:
        yield sink
    finally:
        await app_runner.cleanup()


async def produce(
    conf: Mapping[str, object],
    topic: str,
    count: int,
    *,
    partitions: int = 1,
    start: int = 0,
    headers: tuple[tuple[str, bytes], ...] = (),
) -> None:
    """`count` plain records `{"n": i}`, record i to partition i % partitions, key `k<i>`."""
    async with kafka.Producer(conf) as producer:
        await asyncio.gather(
            *(
                producer.send(
                    topic,
                    f'{{"n": {i}}}',
                    key=f"k{i}",
                    partition=i % partitions,
                    headers=(("content-type", b"application/json"), *headers),
                )  # fmt: skip
                for i in range(start, start + count)
            )
        )


async def committed(conf: Mapping[str, object], group: str, topic: str, partitions: int) -> int:
    """How many records of `topic` the consumer group `group` has committed, all partitions
    together (a consumer that does not join the group: it only reads the group's offsets)."""

    def read() -> int:
        consumer = ck.Consumer({**conf, "group.id": group, "enable.auto.commit": False})
        try:
            wanted = [ck.TopicPartition(topic, p) for p in range(partitions)]
            return sum(max(0, tp.offset) for tp in consumer.committed(wanted, timeout=10))
        finally:
            consumer.close()

    return await asyncio.to_thread(read)


def adapter_env(bootstrap: str, topic: str, group: str, sink: str, **extra: str) -> dict[str, str]:
    return {
        "K_SINK": sink,
        "NAMESPACE": "ci",
        "NAME": "builds",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPICS": topic,
        "KAFKA_CONSUMER_GROUP": group,
        "KAFKA_INITIAL_OFFSET": "earliest",
        "KAFKA_COMMIT_INTERVAL": "0.2",
        "KAFKA_HOLD_INITIAL": "0.2",
        "KAFKA_HOLD_MAX": "1",
        "K_DELIVERY": '{"retry": 1, "backoffDelay": "PT0.05S"}',
        **extra,
    }


@dataclass
class Running:
    adapter: adapter.Adapter
    registry: CollectorRegistry
    readiness: probes.Readiness

    def sample(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        return float(self.registry.get_sample_value(name, dict(labels or {})) or 0.0)


@contextlib.asynccontextmanager
async def in_process(
    env: Mapping[str, str], tracer_provider: trace.TracerProvider | None = None
) -> AsyncIterator[Running]:
    """The adapter on the shared runner; stopped as SIGTERM would (drain, commit, leave)."""
    adapter_settings = settings.AdapterSettings.from_env(env)
    source = config.Settings.from_env(env)
    registry, readiness = CollectorRegistry(), probes.Readiness()
    receive = adapter.Adapter(
        adapter_settings, source, registry=registry, readiness=readiness,
        tracer_provider=tracer_provider,
    )  # fmt: skip
    shared = runner.Runner(receive.components(), readiness=readiness, handle_signals=False)
    task = asyncio.create_task(shared.run())
    try:
        yield Running(receive, registry, readiness)
    finally:
        shared.request_stop()
        assert await task == 0


async def process(env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """`python -m sources.kafka` with `env` (probes and metrics on free ports)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("K_", "KAFKA_"))}
    full.update(
        METRICS_PROMETHEUS_PORT=str(free_port()),
        KEVENTS_PROBES_PORT=str(free_port()),
        KEVENTS_LOG_FORMAT="text",
        **env,
    )
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sources.kafka", env=full,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


def per_partition(events: list[cloudevent.CloudEvent]) -> dict[int, list[int]]:
    """Offsets in arrival order, by partition (from Knative's `partition:P#OFFSET` subject)."""
    out: dict[int, list[int]] = {}
    for event in events:
        subject = str(event.get_attributes()["subject"])
        partition, offset = subject.removeprefix("partition:").split("#")
        out.setdefault(int(partition), []).append(int(offset))
    return out


Predicate = Callable[[], bool]
