"""`kevents.kafka.Consumer`'s flow control with the local cluster's real Kafka broker: a
paused partition yields nothing while the others flow and everything once resumed, and
pause/resume return while a fetch is still waiting on the consumer's thread (librdkafka's own
pause/resume wait for that fetch: called on the event loop they blocked every lane's
deliveries for up to the fetch's wait)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from kevents import errors, kafka
from tests.kafka import KafkaBroker

pytestmark = pytest.mark.cluster


@pytest.fixture
async def consumer(kafka_broker: KafkaBroker, kafka_topic: str) -> AsyncIterator[kafka.Consumer]:
    await kafka_broker.create(kafka_topic, partitions=2)
    assigned = asyncio.Event()
    group = f"test-flow-{uuid.uuid4().hex[:8]}"
    c = kafka.Consumer(
        kafka_broker.config(), group_id=group, topics=[kafka_topic],
        on_assign=lambda _: assigned.set(), on_revoke=lambda _: {},
    )  # fmt: skip
    async with c:
        # A fresh broker creates its group coordinator's topic first: polls fail until then.
        async with asyncio.timeout(60):
            while not assigned.is_set():
                with contextlib.suppress(errors.KafkaError):
                    assert await c.poll(wait=0.5) == []
        yield c


async def produce(broker: KafkaBroker, topic: str, partition: int, count: int) -> None:
    async with kafka.Producer(broker.config()) as producer:
        for i in range(count):
            await producer.send(topic, f"p{partition}-{i}", partition=partition)


async def drain(c: kafka.Consumer, wanted: int) -> list[kafka.Record]:
    got: list[kafka.Record] = []
    async with asyncio.timeout(60):
        while len(got) < wanted:
            got += await c.poll(wait=0.5)
    return got


async def test_a_paused_partition_waits_and_resumes_where_it_stopped(
    consumer: kafka.Consumer, kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    consumer.pause([(kafka_topic, 0)])
    await produce(kafka_broker, kafka_topic, 0, 5)
    await produce(kafka_broker, kafka_topic, 1, 5)
    flowing = await drain(consumer, 5)
    assert {r.partition for r in flowing} == {1}
    # Partition 0 stays quiet while paused: the next fetches bring nothing of it.
    for _ in range(3):
        assert [r for r in await consumer.poll(wait=0.2) if r.partition == 0] == []
    consumer.resume([(kafka_topic, 0)])
    resumed = await drain(consumer, 5)
    assert [r.value for r in resumed] == [f"p0-{i}".encode() for i in range(5)]


async def test_pause_and_resume_do_not_wait_for_a_fetch_in_progress(
    consumer: kafka.Consumer, kafka_topic: str
) -> None:
    loop = asyncio.get_running_loop()
    fetching = asyncio.create_task(consumer.poll(wait=6.0))  # an idle topic: waits 6 s
    await asyncio.sleep(0.3)  # the fetch is under way on the consumer's thread
    assert not fetching.done()
    started = loop.time()
    consumer.pause([(kafka_topic, 0)])
    consumer.resume([(kafka_topic, 0)])
    # Waiting for the fetch would hold the event loop for its remaining ~5.7 s.
    assert loop.time() - started < 2.0
    assert await fetching == []
