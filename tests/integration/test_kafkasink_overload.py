"""Latency under overload is bounded by admission at the Kafka ingress: while the real Kafka
broker is stalled (its process stopped), events already handed to the producer wait, and a
new event for the same KafkaSink is answered 429 + Retry-After at once instead of joining
the wait; once Kafka resumes, the waiting events are stored and answered 202, new events are
accepted again, and the topic holds exactly the accepted events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from kubernetes_asyncio import client

from hack import processes
from kevents import cloudevent, kafka, kubeapi
from tests import waiting
from tests.cluster import Kube
from tests.integration import kafkasink_harness as h
from tests.integration.dispatcher_harness import post
from tests.kafka import KafkaBroker

pytestmark = pytest.mark.cluster

TARGET = 0.5
"""KEVENTS_PRODUCE_TARGET of the ingress under test (seconds)."""


@contextlib.contextmanager
def kafka_stalled(kube: Kube) -> Iterator[None]:
    """The local cluster's Kafka broker stopped (SIGSTOP: connections stay open, nothing is
    answered) for the block, and resumed after it whatever happens."""
    assert kube.state_dir is not None, "needs the local cluster"
    state = json.loads((kube.state_dir / "state.json").read_text())
    (rec,) = [processes.Recorded(**p) for p in state["processes"] if p["name"] == "kafka"]
    assert processes.alive(rec), "the local Kafka broker is not running"
    os.kill(rec.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(rec.pid, signal.SIGCONT)


@pytest.fixture
async def topic(kafka_broker: KafkaBroker) -> AsyncIterator[str]:
    name = f"kafkasink-overload-{uuid.uuid4().hex[:8]}"
    await kafka.ensure_topic(kafka_broker.config(), name, partitions=1, replication_factor=1)
    yield name
    await kafka.delete_topic(kafka_broker.config(), name)


def order(id: str) -> cloudevent.CloudEvent:
    return cloudevent.build("dev.example.order", "/tests/overload", {"order": id}, id=id)


async def test_a_stalled_kafka_gets_new_events_refused_at_once_and_loses_nothing(
    kube: Kube,
    api_client: client.ApiClient,
    namespace: str,
    kafka_broker: KafkaBroker,
    topic: str,
) -> None:
    h.ensure_crd(kube)
    api = kubeapi.KubeApi(api_client)
    await h.create(api, namespace, h.kafkasink("orders", topic, [kafka_broker.bootstrap]))
    async with h.running_ingress(
        api_client, KEVENTS_PRODUCE_TARGET=str(TARGET), KEVENTS_PRODUCE_TIMEOUT="60"
    ) as ingress:
        await h.served(ingress, namespace, "orders")
        url = h.url(ingress, namespace, "orders")
        status, text, _ = await post(url, order("warm"))  # the producer is connected
        assert status == 202, text
        key = (namespace, "orders")
        with kafka_stalled(kube):
            waiting_ones = [asyncio.create_task(post(url, order(f"w-{i}"))) for i in range(2)]
            await waiting.until(lambda: ingress.ingress.longest_wait(key) > TARGET, within=30)
            # Kafka is still stopped: only an answer that does not wait for it can arrive.
            status, text, headers = await asyncio.wait_for(post(url, order("refused")), 30)
            assert status == 429, text
            assert headers.get("Retry-After") == "1"
            assert "Kafka is not keeping up" in text
            assert not any(task.done() for task in waiting_ones)  # they wait for Kafka
        answers = await asyncio.gather(*waiting_ones)
        assert [status for status, _, _ in answers] == [202, 202], answers
        status, text, _ = await post(url, order("after"))
        assert status == 202, text
    records = await h.read_records(kafka_broker.bootstrap, topic, 4)
    ids = sorted(dict(r.headers)["ce_id"].decode() for r in records)
    assert ids == ["after", "w-0", "w-1", "warm"]
    assert await asyncio.to_thread(h.end_offset, kafka_broker.bootstrap, topic) == 4
