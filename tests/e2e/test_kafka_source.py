"""KafkaSource end to end on the installed system (`hack/up`: the controller in a pod, the
adapter Deployments run by the node agent) and the local cluster's real Kafka broker.

Records are produced from the host (the broker's host listener); the sources read them from
pods through `kafka.kevents-system.svc.cluster.local`. Events are read back from event-display
pods (GET /events on their pod IPs, DISPLAY_HISTORY large enough to keep all of them).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kevents import cloudevent, kafka
from tests import cluster, waiting
from tests.e2e import installed, scenarios
from tests.kafka import KafkaBroker

pytestmark = pytest.mark.cluster

DISPLAY_IMAGE = "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display"


def display(ns: str, name: str) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: display
        image: {DISPLAY_IMAGE}
        env: [{{name: DISPLAY_HISTORY, value: "20000"}}]
        readinessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


def source(ns: str, name: str, topic: str, servers: str, sink: dict[str, Any], **spec: Any) -> str:
    return yaml.safe_dump({
        "apiVersion": "sources.knative.dev/v1beta1", "kind": "KafkaSource",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"bootstrapServers": [servers], "topics": [topic], "sink": sink, **spec},
    })  # fmt: skip


def service(name: str) -> dict[str, Any]:
    return {"ref": {"apiVersion": "v1", "kind": "Service", "name": name}}


def conditions(kube: cluster.Kube, ns: str, what: str) -> dict[str, dict[str, Any]]:
    proc = kube.kubectl("-n", ns, "get", what, "-o", "json", check=False)
    if proc.returncode != 0:
        return {}
    obj = json.loads(proc.stdout)
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def ready(kube: cluster.Kube, ns: str, what: str) -> bool:
    return conditions(kube, ns, what).get("Ready", {}).get("status") == "True"


def produce(broker: KafkaBroker, topic: str, values: list[tuple[int, bytes]]) -> None:
    """Plain records (partition, value), in order, keyed `k<i>`."""

    async def run() -> None:
        async with kafka.Producer(broker.config()) as producer:
            for i, (partition, value) in enumerate(values):
                await producer.send(topic, value, key=f"k{i}", partition=partition)

    asyncio.run(run())


def produce_events(broker: KafkaBroker, topic: str, events: list[cloudevent.CloudEvent]) -> None:
    """CloudEvents as binary-mode records (ce_ headers)."""

    async def run() -> None:
        async with kafka.Producer(broker.config()) as producer:
            for event in events:
                await producer.send_message(topic, kafka.encode_event(event))

    asyncio.run(run())


def create_topic(broker: KafkaBroker, partitions: int) -> str:
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    asyncio.run(broker.create(name, partitions=partitions))
    return name


@pytest.fixture(scope="module")
def namespace(kube: cluster.Kube, main_job: installed.MainJob) -> Iterator[str]:
    """A namespace labelled for Broker injection, with an event-display per test."""
    ns = f"kafkasource-e2e-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", ns)
    kube.kubectl("label", "namespace", ns, "eventing.knative.dev/injection=enabled")
    try:
        for app in ("display-ordered", "display-broker", "display-down", "display-kill",
                    "display-sasl"):  # fmt: skip
            kube.apply(display(ns, app))
        for app in ("display-ordered", "display-broker", "display-down", "display-kill",
                    "display-sasl"):  # fmt: skip
            kube.kubectl("-n", ns, "rollout", "status", f"deployment/{app}", "--timeout=120s")
        yield ns
    finally:
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def pods_bootstrap(broker: KafkaBroker, *, sasl: bool = False) -> str:
    found = broker.pods_sasl_bootstrap if sasl else broker.pods_bootstrap
    assert found, "the broker has no address for pods"
    return found


def offsets_by_partition(events: list[dict[str, Any]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for event in events:
        partition, offset = event["attributes"]["subject"].removeprefix("partition:").split("#")
        out.setdefault(int(partition), []).append(int(offset))
    return out


def test_earliest_delivers_every_pre_produced_record_once_in_order_per_partition(
    kube: cluster.Kube, namespace: str, kafka_broker: KafkaBroker
) -> None:
    ns, topic = namespace, create_topic(kafka_broker, 3)
    produce(kafka_broker, topic, [(i % 3, f'{{"n": {i}}}'.encode()) for i in range(1000)])
    kube.apply(source(ns, "ordered", topic, pods_bootstrap(kafka_broker),
                      service("display-ordered"), initialOffset="earliest"))  # fmt: skip
    waiting.eventually(lambda: ready(kube, ns, "kafkasource/ordered"), 180,
                         "KafkaSource ordered Ready", 1.0)  # fmt: skip
    # One sentinel per partition, after the 1,000: each partition is delivered in order, so
    # once the three are in, every record before them is too.
    produce(kafka_broker, topic, [(p, b"sentinel") for p in range(3)])
    events = waiting.eventually(
        lambda: (e := scenarios.received(kube, ns, "app=display-ordered"))
        and sum(x["data"] == "sentinel" for x in e) == 3 and e,
        240, "the three sentinels at event-display", 2.0,
    )  # fmt: skip
    records = [e for e in events if e["data"] != "sentinel"]
    ids = [e["attributes"]["id"] for e in records]
    assert len(ids) == 1000 == len(set(ids))
    assert offsets_by_partition(records) == {p: list(range(334 if p == 0 else 333))
                                             for p in range(3)}  # fmt: skip
    first = next(e for e in records if e["attributes"]["id"] == "partition:0/offset:0")
    attributes = first["attributes"]
    assert attributes["type"] == "dev.knative.kafka.event"
    assert attributes["source"] == f"/apis/v1/namespaces/{ns}/kafkasources/ordered#{topic}"
    assert attributes["subject"] == "partition:0#0"
    assert first["extensions"]["key"] == "k0"
    status = kube.get_json("-n", ns, "kafkasource", "ordered")["status"]
    assert isinstance(status, dict)
    assert status["consumers"] == 1
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "SinkProvided": "True", "ConnectionEstablished": "True",
        "InitialOffsetsCommitted": "True", "Deployed": "True", "Ready": "True",
    }  # fmt: skip
    columns = kube.kubectl("-n", ns, "get", "kafkasource", "ordered").stdout.splitlines()[0]
    assert columns.split() == ["NAME", "TOPICS", "BOOTSTRAPSERVERS", "READY", "REASON", "AGE"]


def test_into_a_broker_only_events_the_trigger_matches_reach_the_sink(
    kube: cluster.Kube, namespace: str, kafka_broker: KafkaBroker
) -> None:
    ns, topic = namespace, create_topic(kafka_broker, 1)
    waiting.eventually(lambda: ready(kube, ns, "broker/default"), 120,
                         "the injected default Broker Ready", 1.0)  # fmt: skip
    kube.apply(f"""
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: passed-builds, namespace: {ns}}}
spec:
  broker: default
  filter: {{attributes: {{buildstatus: pass}}}}
  subscriber: {{ref: {{apiVersion: v1, kind: Service, name: display-broker}}}}
""")
    broker_ref = {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                          "name": "default"}}  # fmt: skip
    kube.apply(source(ns, "builds", topic, pods_bootstrap(kafka_broker), broker_ref))
    for what in ("trigger/passed-builds", "kafkasource/builds"):
        waiting.eventually(lambda w=what: ready(kube, ns, w), 180, f"{what} Ready", 1.0)  # type: ignore[misc]
    builds = [
        cloudevent.build(
            "dev.knative.ci.build",
            "/ci",
            {"build": i},
            id=f"build-{i}",
            extensions={"buildstatus": "pass" if i % 3 else "fail"},
        )  # fmt: skip
        for i in range(30)
    ]
    sentinel = cloudevent.build(
        "dev.knative.ci.build", "/ci", {"build": "last"}, id="build-sentinel",
        extensions={"buildstatus": "pass"},
    )  # fmt: skip
    produce_events(kafka_broker, topic, [*builds, sentinel])
    # The source sends one event at a time, so the broker admitted every build before the
    # sentinel; the Trigger's deliveries may overtake each other, hence a set.
    wanted = {f"build-{i}" for i in range(30) if i % 3} | {"build-sentinel"}
    events = waiting.eventually(
        lambda: (e := scenarios.received(kube, ns, "app=display-broker"))
        and wanted <= {x["attributes"]["id"] for x in e} and e,
        180, "the passed builds and the sentinel at the filtered display", 2.0,
    )  # fmt: skip
    assert sorted(e["attributes"]["id"] for e in events) == sorted(wanted)
    assert {e["extensions"]["buildstatus"] for e in events} == {"pass"}


def test_sasl_through_a_secret_and_a_wrong_password_names_the_authentication_failure(
    kube: cluster.Kube, namespace: str, kafka_broker: KafkaBroker
) -> None:
    ns, topic = namespace, create_topic(kafka_broker, 1)
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "kafka-sasl", "namespace": ns},
              "stringData": {"user": kafka_broker.user, "password": "wrong-password",
                             "mechanism": "SCRAM-SHA-512"}}  # fmt: skip
    kube.apply(yaml.safe_dump(secret))
    net = {"sasl": {
        "enable": True,
        "user": {"secretKeyRef": {"name": "kafka-sasl", "key": "user"}},
        "password": {"secretKeyRef": {"name": "kafka-sasl", "key": "password"}},
        "type": {"secretKeyRef": {"name": "kafka-sasl", "key": "mechanism"}},
    }}  # fmt: skip
    kube.apply(source(ns, "sasl", topic, pods_bootstrap(kafka_broker, sasl=True),
                      service("display-sasl"), net=net, initialOffset="earliest"))  # fmt: skip
    failed = waiting.eventually(
        lambda: (c := conditions(kube, ns, "kafkasource/sasl").get("Ready"))
        and c["status"] == "False" and c,
        120, "Ready False", 1.0,
    )  # fmt: skip
    assert failed["reason"] == "ClientCreationFailed"
    assert "Authentication failed" in failed["message"]
    assert "wrong-password" not in kube.kubectl("-n", ns, "get", "kafkasource", "sasl",
                                                "-o", "yaml").stdout  # fmt: skip
    # The right password: Ready (the controller re-reads Secrets within 30 s) and events flow.
    secret["stringData"]["password"] = kafka_broker.password  # type: ignore[index]
    kube.apply(yaml.safe_dump(secret))
    waiting.eventually(lambda: ready(kube, ns, "kafkasource/sasl"), 180,
                         "KafkaSource sasl Ready", 1.0)  # fmt: skip
    produce(kafka_broker, topic, [(0, b"over-sasl")])
    waiting.eventually(
        lambda: any(
            e["data"] == "over-sasl" for e in scenarios.received(kube, ns, "app=display-sasl")
        ),
        120, "the record read over SASL at event-display", 2.0,
    )  # fmt: skip


def test_sink_down_for_ten_seconds_loses_nothing(
    kube: cluster.Kube, namespace: str, kafka_broker: KafkaBroker
) -> None:
    ns, topic = namespace, create_topic(kafka_broker, 2)
    kube.apply(source(ns, "down", topic, pods_bootstrap(kafka_broker), service("display-down")))
    waiting.eventually(lambda: ready(kube, ns, "kafkasource/down"), 180,
                         "KafkaSource down Ready", 1.0)  # fmt: skip
    kube.kubectl("-n", ns, "scale", "deployment/display-down", "--replicas=0")
    waiting.eventually(
        lambda: not kube.get_json("pods", "-n", ns, "-l", "app=display-down")["items"],
        90, "the sink's pod gone", 1.0,
    )  # fmt: skip
    produce(kafka_broker, topic, [(i % 2, f'{{"n": {i}}}'.encode()) for i in range(500)])
    time.sleep(10)  # the outage the issue asks for: the sink stays down 10 s with records in
    kube.kubectl("-n", ns, "scale", "deployment/display-down", "--replicas=1")
    events = waiting.eventually(
        lambda: (e := scenarios.received(kube, ns, "app=display-down"))
        and len({x["attributes"]["id"] for x in e}) >= 500 and e,
        240, "all 500 records at the recovered sink", 2.0,
    )  # fmt: skip
    ids = {e["attributes"]["id"] for e in events}
    assert ids == {f"partition:{i % 2}/offset:{i // 2}" for i in range(500)}


def test_adapter_killed_mid_stream_delivers_every_record(
    kube: cluster.Kube, namespace: str, kafka_broker: KafkaBroker
) -> None:
    ns, topic = namespace, create_topic(kafka_broker, 3)
    kube.apply(source(ns, "kill", topic, pods_bootstrap(kafka_broker), service("display-kill")))
    waiting.eventually(lambda: ready(kube, ns, "kafkasource/kill"), 180,
                         "KafkaSource kill Ready", 1.0)  # fmt: skip
    total = 3000
    records = [(i % 3, f'{{"n": {i}}}'.encode()) for i in range(total)]
    produce(kafka_broker, topic, records[: total // 2])
    waiting.eventually(lambda: len(scenarios.received(kube, ns, "app=display-kill")) >= 300, 180,
                         "the first deliveries", 0.2)  # fmt: skip
    kube.kubectl("-n", ns, "delete", "pod", "-l", "eventing.knative.dev/sourceName=kill",
                 "--grace-period=0", "--force", "--wait=false")  # fmt: skip
    killed_at = len(scenarios.received(kube, ns, "app=display-kill"))
    # the second half arrives while the replacement pod starts and takes the partitions over
    produce(kafka_broker, topic, records[total // 2 :])
    events = waiting.eventually(
        lambda: (e := scenarios.received(kube, ns, "app=display-kill"))
        and len({x["attributes"]["id"] for x in e}) >= total and e,
        300, f"all {total} records after the kill", 2.0,
    )  # fmt: skip
    ids = [e["attributes"]["id"] for e in events]
    duplicates = len(ids) - len(set(ids))
    print(f"\nadapter killed after ~{killed_at} of {total} deliveries: "  # noqa: T201
          f"{duplicates} delivered twice (the uncommitted window)")  # fmt: skip
    assert set(ids) == {f"partition:{i % 3}/offset:{i // 3}" for i in range(total)}
    assert duplicates < total // 2
    # Only the uncommitted window came again: in each partition the offsets delivered twice
    # are one contiguous run (from the last commit to where the killed pod had got), none
    # three times.
    for partition, offsets in offsets_by_partition(events).items():
        again = sorted({o for o in offsets if offsets.count(o) > 1})
        assert all(offsets.count(o) == 2 for o in again), partition
        assert not again or again == list(range(again[0], again[-1] + 1)), partition
