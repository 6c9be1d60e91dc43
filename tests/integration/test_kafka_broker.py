"""kevents.kafka against the local cluster's real Kafka broker (hack/localcluster/kafka.py):
both listeners (PLAINTEXT, SASL_PLAINTEXT with PLAIN and SCRAM), topics created once,
acknowledged records read back in order with explicit commits, the CloudEvents binding read
by Kafka's own console consumer, and refused credentials classified as such."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from hack import ports
from kevents import cloudevent, errors, kafka
from tests.kafka import ConsoleRecord, KafkaBroker

COUNT = 60


@pytest.mark.parametrize("listener", ["PLAINTEXT", "PLAIN", "SCRAM-SHA-512"])
async def test_acknowledged_records_are_consumed_in_order_and_commits_hold(
    kafka_broker: KafkaBroker, kafka_topic: str, listener: str
) -> None:
    if listener == "PLAINTEXT":
        config = kafka_broker.config()
    else:
        config = kafka.client_config(kafka_broker.sasl_bootstrap, kafka_broker.auth(listener))
    assert await kafka.ensure_topic(config, kafka_topic, partitions=3) is True
    assert await kafka.ensure_topic(config, kafka_topic, partitions=3) is False

    async with kafka.Producer(config) as producer:
        acks = await asyncio.gather(
            *(producer.send(kafka_topic, f"{i}".encode(), key=f"k{i % 4}") for i in range(COUNT))
        )
    assert {ack.partition for ack in acks} <= {0, 1, 2}
    group = f"{kafka_topic}-group"
    seen: list[kafka.Record] = []
    async with kafka.Consumer(config, group_id=group, topics=[kafka_topic]) as consumer:
        while len(seen) < COUNT:
            seen += await consumer.poll(100, wait=1.0)
        assert sorted(int(r.value or b"") for r in seen) == list(range(COUNT))
        for partition in {r.partition for r in seen}:
            in_partition = [r for r in seen if r.partition == partition]
            # one key always lands on one partition, and a partition keeps send order
            assert [r.offset for r in in_partition] == sorted(r.offset for r in in_partition)
            for key in {r.key for r in in_partition}:
                values = [int(r.value or b"") for r in in_partition if r.key == key]
                assert values == sorted(values)
        committed = {(r.topic, r.partition): r.offset + 1 for r in seen}
        await consumer.commit(committed)

    # the group resumes after its commit: the next record it reads is the one sent after
    async with kafka.Producer(config) as producer:
        await producer.send(kafka_topic, b"after", key="k0")
    async with kafka.Consumer(config, group_id=group, topics=[kafka_topic]) as consumer:
        again: list[kafka.Record] = []
        while not again:
            again = await consumer.poll(100, wait=1.0)
    assert [r.value for r in again] == [b"after"]


async def test_console_consumer_reads_both_content_modes(
    kafka_broker: KafkaBroker,
    kafka_topic: str,
    kafka_console_consumer: Callable[..., list[ConsoleRecord]],
) -> None:
    await kafka_broker.create(kafka_topic)
    event = cloudevent.build(
        "dev.knative.kafka.test",
        "/tests",
        {"buildstatus": "pass"},
        id="e-1",
        datacontenttype="application/json",
        extensions={"partitionkey": "build-1"},
    )
    async with kafka.Producer(kafka_broker.config(sasl=True)) as producer:
        for mode in kafka.ContentMode:
            await producer.send_message(kafka_topic, kafka.encode_event(event, mode))

    binary, structured = await asyncio.to_thread(kafka_console_consumer, kafka_topic, 2)
    headers = dict(binary.headers)
    assert (headers["ce_id"], headers["ce_type"], headers["ce_source"]) == (
        "e-1",
        "dev.knative.kafka.test",
        "/tests",
    )
    assert headers["content-type"] == "application/json"
    assert (binary.key, json.loads(binary.value)) == ("build-1", {"buildstatus": "pass"})
    assert dict(structured.headers) == {"content-type": "application/cloudevents+json"}
    envelope = json.loads(structured.value)
    assert (envelope["id"], envelope["data"], structured.key) == (
        "e-1",
        {"buildstatus": "pass"},
        "build-1",
    )

    # and our decoder reads back what the console consumer saw
    async with kafka.Consumer(
        kafka_broker.config(), group_id=f"{kafka_topic}-g", topics=[kafka_topic]
    ) as consumer:
        records: list[kafka.Record] = []
        while len(records) < 2:
            records += await consumer.poll(10, wait=1.0)
    decoded = [kafka.decode_record(r) for r in records]
    assert [e.get_id() if e else None for e in decoded] == ["e-1", "e-1"]
    assert all(e is not None and e.get_data() == {"buildstatus": "pass"} for e in decoded)


async def test_wrong_password_is_an_authentication_failure(
    kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    config = kafka.client_config(
        kafka_broker.sasl_bootstrap, kafka_broker.auth(password="not-the-password")
    )
    with pytest.raises(errors.KafkaAuthenticationError) as checked:
        await kafka.check(config, request_timeout=60)
    assert "Invalid username or password" in str(checked.value)
    assert checked.value.reason == "AuthenticationFailed"
    assert "not-the-password" not in str(checked.value)
    with pytest.raises(errors.KafkaAuthenticationError):
        await kafka.ensure_topic(config, kafka_topic, request_timeout=60)
    async with kafka.Producer(config, delivery_timeout=60) as producer:
        with pytest.raises(errors.KafkaAuthenticationError):
            await producer.send(kafka_topic, b"never stored")


async def test_no_listener_is_unreachable_with_the_cause() -> None:
    config = kafka.client_config(f"127.0.0.1:{ports.free_port()}")
    with pytest.raises(errors.KafkaUnreachableError, match="Connection refused"):
        await kafka.check(config, request_timeout=3)
