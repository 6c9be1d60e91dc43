"""Broker class Kafka end to end on the installed system (`hack/up`: the controller and the
`kafka-broker` pods) with the local cluster's real Kafka, which the pods reach as
`kafka.kevents-system.svc.cluster.local`.

The tutorial's YAML applies unchanged: its ConfigMap `kafka-broker-config` in
`knative-eventing` (Knative's namespace, which the tutorial's ConfigMap names), the Broker
annotated `eventing.knative.dev/broker.class: Kafka` in `my-knative-services` with a
dead-letter Knative Service, a Trigger filtering `type` + `source` to a Knative Service.
Events are POSTed to the Broker's address (through the ingress Service's cluster IP, as a pod
would through its name). A subscriber answering 500 dead-letters after its retries with the
error extensions; a misnamed ConfigMap makes the Broker Ready False naming it.

Durability: 5,000 events accepted (202) by the ingress while the data plane's pod is killed
(`--grace-period=0 --force`: SIGKILL, no drain) and recreated mid-stream all reach the
subscriber (duplicates counted and printed, none lost); the same against an InMemoryChannel
broker answering at acceptance (`messaging.knative.dev/async-handler: "true"`) loses what was
accepted and not delivered (with a subscriber failing each event's first attempt: the events
waiting in memory for their retry).
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests import cluster, waiting
from tests.e2e import installed, scenarios
from tests.kafka import KafkaBroker

pytestmark = pytest.mark.cluster

SYSTEM = installed.SYSTEM_NAMESPACE
TUTORIAL_NS = "my-knative-services"
DISPLAY = "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display"
DURABLE_COUNT = 5000
# the tutorial's Knative Services (Knative's event_display: what they got is in their logs)
RECEIVER = "serving.knative.dev/service=event-receiver"
DLQ = "serving.knative.dev/service=knative-kafka-dlq"

FAIL_500 = (
    "import http.server\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_POST(self):\n"
    "        self.rfile.read(int(self.headers.get('content-length') or 0))\n"
    "        body = b'subscriber broken'\n"
    "        self.send_response(500)\n"
    "        self.send_header('content-length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def do_GET(self):\n"
    "        self.send_response(200)\n"
    "        self.send_header('content-length', '0')\n"
    "        self.end_headers()\n"
    "http.server.ThreadingHTTPServer(('', 8080), H).serve_forever()\n"
)


FLAKY_RECORDER = (
    "import http.server, json, time\n"
    "ids, tried = [], set()\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_POST(self):\n"
    "        self.rfile.read(int(self.headers.get('content-length') or 0))\n"
    "        id = self.headers.get('ce-id')\n"
    "        first = id not in tried\n"
    "        tried.add(id)\n"
    "        if not first:\n"
    "            time.sleep(0.005)\n"
    "            ids.append(id)\n"
    "        self.send_response(503 if first else 202)\n"
    "        self.send_header('content-length', '0')\n"
    "        self.end_headers()\n"
    "    def do_GET(self):\n"
    "        rows = [{'attributes': {'id': i}} for i in ids] if self.path == '/events' else []\n"
    "        body = json.dumps(rows).encode()\n"
    "        self.send_response(200)\n"
    "        self.send_header('content-length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "class S(http.server.HTTPServer):\n"
    "    request_queue_size = 1024\n"
    "S(('', 8080), H).serve_forever()\n"
)
"""A subscriber that answers 503 to the first attempt of each event (a restarting or cold
backend) and records the ids it accepted on a retry (GET /events). Every accepted event then
waits in the dispatcher's memory for its retry (the Trigger's backoff, 1 s): when the pod
is killed, those are lost. (A subscriber that is merely slow leaves little in memory: the
dispatcher's CoDel admission answers 429 once events wait 5 ms, and requests already sent
are in the subscriber's socket buffer.)"""


def tutorial_config(bootstrap: str) -> str:
    return f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: kafka-broker-config
  namespace: knative-eventing
data:
  default.topic.partitions: "10"
  default.topic.replication.factor: "1"
  bootstrap.servers: "{bootstrap}"
"""


TUTORIAL = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: knative-kafka-dlq
  namespace: my-knative-services
spec:
  template:
    spec:
      containers:
      - image: gcr.io/knative-releases/knative.dev/eventing/cmd/event_display
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: event-receiver
  namespace: my-knative-services
spec:
  template:
    spec:
      containers:
      - image: gcr.io/knative-releases/knative.dev/eventing/cmd/event_display
        env: [{name: DISPLAY_HISTORY, value: "20000"}]
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  annotations:
    eventing.knative.dev/broker.class: Kafka
  name: knative-kafka-broker
  namespace: my-knative-services
spec:
  config:
    apiVersion: v1
    kind: ConfigMap
    name: kafka-broker-config
    namespace: knative-eventing
  delivery:
    deadLetterSink:
      ref:
        apiVersion: serving.knative.dev/v1
        kind: Service
        name: knative-kafka-dlq
        namespace: my-knative-services
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: order-trigger
  namespace: my-knative-services
spec:
  broker: knative-kafka-broker
  filter:
    attributes:
      type: dev.example.order
      source: /e2e/kafka-broker
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: event-receiver
"""

FAILING = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: fail500, namespace: {TUTORIAL_NS}}}
spec:
  selector: {{matchLabels: {{app: fail500}}}}
  template:
    metadata: {{labels: {{app: fail500}}}}
    spec:
      containers:
      - name: fail
        image: python:3.11
        command: ["python", "-c", {json.dumps(FAIL_500)}]
        readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: fail500, namespace: {TUTORIAL_NS}}}
spec:
  selector: {{app: fail500}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: failing, namespace: {TUTORIAL_NS}}}
spec:
  broker: knative-kafka-broker
  filter:
    attributes:
      type: dev.example.fail
  subscriber:
    ref: {{apiVersion: v1, kind: Service, name: fail500}}
  delivery:
    retry: 2
    backoffPolicy: linear
    backoffDelay: PT0.2S
"""


def ready(kube: cluster.Kube, ns: str, what: str) -> bool:
    proc = kube.kubectl("-n", ns, "get", what, "-o", "json", check=False)
    if proc.returncode != 0:
        return False
    obj = json.loads(proc.stdout)
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def wait_ready(kube: cluster.Kube, ns: str, what: str, within: float = 180) -> None:
    waiting.eventually(lambda: ready(kube, ns, what), within, f"{ns} {what} Ready", 1.0)


def ingress_ip(kube: cluster.Kube, service: str) -> str:
    svc = kube.get_json("-n", SYSTEM, "service", service)
    return str(svc["spec"]["clusterIP"])  # type: ignore[index]


def post(url: str, id: str, type: str, source: str, timeout: float = 30.0) -> int:
    headers = {
        "ce-specversion": "1.0", "ce-id": id, "ce-type": type, "ce-source": source,
        "content-type": "application/json",
    }  # fmt: skip
    request = urllib.request.Request(
        url, data=json.dumps({"id": id}).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as answer:
        with answer:
            return int(answer.code)
    except OSError:
        return 0  # refused, reset or timed out: not accepted


def accept(url: str, id: str, type: str, source: str, within: float = 300.0) -> None:
    """POST until the ingress accepts it (202), as a producer that retries does."""
    deadline = time.monotonic() + within
    while True:
        status = post(url, id, type, source)
        if status == 202:
            return
        assert status in (0, 429, 502, 503, 504), f"event {id}: answered {status}"
        assert time.monotonic() < deadline, f"event {id} not accepted within {within:.0f} s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def tutorial(
    kube: cluster.Kube, main_job: installed.MainJob, kafka_broker: KafkaBroker
) -> Iterator[str]:
    assert kafka_broker.pods_bootstrap, "the pods' Kafka address"
    for ns in ("knative-eventing", TUTORIAL_NS):
        kube.kubectl("create", "namespace", ns, check=False)
    kube.apply(tutorial_config(kafka_broker.pods_bootstrap))
    try:
        kube.apply(TUTORIAL)
        kube.apply(FAILING)
        wait_ready(kube, TUTORIAL_NS, "broker/knative-kafka-broker")
        for what in ("trigger/order-trigger", "trigger/failing", "ksvc/event-receiver",
                     "ksvc/knative-kafka-dlq"):  # fmt: skip
            wait_ready(kube, TUTORIAL_NS, what)
        kube.kubectl("-n", TUTORIAL_NS, "rollout", "status", "deployment/fail500",
                     "--timeout=180s")  # fmt: skip
        yield TUTORIAL_NS
    finally:
        # While the controller runs: its finalizer deletes the Broker's topic.
        kube.kubectl("-n", TUTORIAL_NS, "delete", "brokers", "--all", "--timeout=120s",
                     check=False)  # fmt: skip
        kube.kubectl("delete", "namespace", TUTORIAL_NS, "--wait=false", check=False)
        kube.kubectl("-n", "knative-eventing", "delete", "configmap", "kafka-broker-config",
                     check=False)  # fmt: skip


def broker_url(kube: cluster.Kube, ns: str, name: str) -> str:
    return f"http://{ingress_ip(kube, 'kafka-broker-ingress')}/{ns}/{name}"


def test_the_tutorial_broker_delivers_matching_events_to_its_knative_service(
    kube: cluster.Kube, tutorial: str
) -> None:
    broker = kube.get_json("-n", tutorial, "broker", "knative-kafka-broker")
    assert broker["status"]["address"]["url"] == (  # type: ignore[index]
        f"http://kafka-broker-ingress.{SYSTEM}.svc.cluster.local/{tutorial}/knative-kafka-broker"
    )
    url = broker_url(kube, tutorial, "knative-kafka-broker")
    run = uuid.uuid4().hex[:6]
    for i in range(20):
        assert post(url, f"{run}-order-{i}", "dev.example.order", "/e2e/kafka-broker") == 202
        assert post(url, f"{run}-elsewhere-{i}", "dev.example.order", "/elsewhere") == 202
        assert post(url, f"{run}-refund-{i}", "dev.example.refund", "/e2e/kafka-broker") == 202
    assert post(url, f"{run}-sentinel", "dev.example.order", "/e2e/kafka-broker") == 202

    def received() -> list[str]:
        return [
            e["attributes"]["id"]
            for e in scenarios.received(kube, tutorial, RECEIVER)
            if e["attributes"]["id"].startswith(run)
        ]

    waiting.eventually(lambda: f"{run}-sentinel" in received(), 120, "the sentinel", 1.0)
    assert sorted(received()) == sorted(
        [f"{run}-order-{i}" for i in range(20)] + [f"{run}-sentinel"]
    )


def test_a_subscriber_answering_500_dead_letters_with_the_error_extensions(
    kube: cluster.Kube, tutorial: str
) -> None:
    url = broker_url(kube, tutorial, "knative-kafka-broker")
    id = f"fail-{uuid.uuid4().hex[:6]}"
    assert post(url, id, "dev.example.fail", "/e2e/kafka-broker") == 202

    def dead() -> list[dict[str, Any]]:
        return [e for e in scenarios.received(kube, tutorial, DLQ) if e["attributes"]["id"] == id]

    found = waiting.eventually(dead, 120, "the event at the dead letter sink", 1.0)
    assert len(found) == 1
    extensions = found[0]["extensions"]
    assert extensions["knativeerrordest"] == f"http://fail500.{tutorial}.svc.cluster.local"
    assert extensions["knativeerrorcode"] == "500"
    assert base64.b64decode(extensions["knativeerrordata"]) == b"subscriber broken"


def test_a_misnamed_config_map_makes_the_broker_not_ready_naming_it(
    kube: cluster.Kube, main_job: installed.MainJob, kafka_broker: KafkaBroker
) -> None:
    ns = f"kafka-misnamed-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", ns)
    try:
        # the tutorial's slip: the ConfigMap is created under another name than referenced
        kube.apply(
            tutorial_config(kafka_broker.pods_bootstrap or "")
            .replace("name: kafka-broker-config", "name: kafka-broker-configuration")
            .replace("namespace: knative-eventing", f"namespace: {ns}")
        )
        kube.apply(
            json.dumps({
                "apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                "metadata": {"name": "misnamed", "namespace": ns,
                             "annotations": {"eventing.knative.dev/broker.class": "Kafka"}},
                "spec": {"config": {"apiVersion": "v1", "kind": "ConfigMap",
                                    "name": "kafka-broker-config", "namespace": ns}},
            })
        )  # fmt: skip

        def not_ready() -> dict[str, Any] | None:
            obj = kube.get_json("-n", ns, "broker", "misnamed")
            for cond in (obj.get("status") or {}).get("conditions") or []:  # type: ignore[attr-defined]
                if cond["type"] == "Ready" and cond["status"] == "False":
                    return dict(cond)
            return None

        cond = waiting.eventually(not_ready, 180, "Broker misnamed Ready False", 1.0)
        assert cond["reason"] == "ConfigMapNotFound"
        assert "kafka-broker-config" in cond["message"]
    finally:
        kube.kubectl("-n", ns, "delete", "brokers", "--all", "--timeout=60s", check=False)
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _stream_with_a_pod_deleted(
    kube: cluster.Kube, url: str, run: str, selector: str, count: int
) -> None:
    """POST `count` events (each retried until accepted) from 8 threads; kill the pods
    matching `selector` in the system namespace (SIGKILL: no graceful drain, as a crash or
    a lost node) once a third is accepted."""
    accepted = Counter[str]()
    lock = threading.Lock()
    deleted = threading.Event()

    def one(i: int) -> None:
        accept(url, f"{run}-{i}", "dev.example.order", "/e2e/kafka-broker")
        with lock:
            accepted["n"] += 1
            kill = accepted["n"] == count // 3 and not deleted.is_set()
            if kill:
                deleted.set()
        if kill:  # outside the lock: the other threads keep sending while kubectl runs
            kube.kubectl("-n", SYSTEM, "delete", "pod", "-l", selector, "--wait=false",
                         "--grace-period=0", "--force")  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))
    assert deleted.is_set() and accepted["n"] == count


def _report(name: str, ids: list[str], run: str, count: int) -> tuple[int, int]:
    seen = Counter(i for i in ids if i.startswith(f"{run}-"))
    lost = count - len(seen)
    duplicates = sum(n - 1 for n in seen.values())
    print(f"\n{name}: {count} accepted, {len(seen)} delivered, {lost} lost, "  # noqa: T201
          f"{duplicates} duplicates")  # fmt: skip
    return lost, duplicates


def test_durability_kafka_broker_loses_nothing_when_its_pod_is_deleted_mid_stream(
    kube: cluster.Kube, tutorial: str
) -> None:
    url = broker_url(kube, tutorial, "knative-kafka-broker")
    run = f"d{uuid.uuid4().hex[:6]}"
    _stream_with_a_pod_deleted(kube, url, run, "app.kubernetes.io/name=kafka-broker", DURABLE_COUNT)
    kube.kubectl("-n", SYSTEM, "rollout", "status", "deployment/kafka-broker", "--timeout=180s")

    def delivered() -> list[str]:
        return [e["attributes"]["id"] for e in scenarios.received(kube, tutorial, RECEIVER)]

    def complete() -> list[str] | None:
        ids = delivered()
        return ids if len({i for i in ids if i.startswith(f"{run}-")}) >= DURABLE_COUNT else None

    ids = waiting.eventually(complete, 300, f"all {DURABLE_COUNT} events delivered", 3.0)
    lost, _ = _report("Kafka Broker", ids, run, DURABLE_COUNT)
    assert lost == 0


def imc_scenario(ns: str) -> str:
    return f"""
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: imc
  namespace: {ns}
  annotations:
    eventing.knative.dev/broker.class: MTChannelBasedBroker
    messaging.knative.dev/async-handler: "true"
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: receiver, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: receiver}}}}
  template:
    metadata: {{labels: {{app: receiver}}}}
    spec:
      containers:
      - name: recorder
        image: python:3.11
        command: ["python", "-c", {json.dumps(FLAKY_RECORDER)}]
        readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: receiver, namespace: {ns}}}
spec:
  selector: {{app: receiver}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: all, namespace: {ns}}}
spec:
  broker: imc
  subscriber:
    ref: {{apiVersion: v1, kind: Service, name: receiver}}
  delivery: {{retry: 5, backoffPolicy: linear, backoffDelay: PT1S}}
"""


def test_durability_the_in_memory_broker_loses_accepted_events_when_its_pod_is_deleted(
    kube: cluster.Kube, main_job: installed.MainJob
) -> None:
    ns = f"imc-durability-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", ns)
    try:
        kube.apply(imc_scenario(ns))
        wait_ready(kube, ns, "broker/imc")
        wait_ready(kube, ns, "trigger/all")
        kube.kubectl("-n", ns, "rollout", "status", "deployment/receiver", "--timeout=180s")
        url = f"http://{ingress_ip(kube, 'broker-ingress')}/{ns}/imc"
        run = f"i{uuid.uuid4().hex[:6]}"
        _stream_with_a_pod_deleted(
            kube, url, run, "app.kubernetes.io/name=kevents-dispatcher", DURABLE_COUNT
        )
        kube.kubectl("-n", SYSTEM, "rollout", "status", "deployment/kevents-dispatcher",
                     "--timeout=180s")  # fmt: skip
        # Two sentinels, the second sent once the first arrived: every event accepted before
        # them has had its retry by then (the backoff is the same for all, retried in order).
        ids: list[str] = []
        for sentinel in (f"{run}-sentinel-1", f"{run}-sentinel-2"):
            accept(url, sentinel, "dev.example.order", "/e2e/kafka-broker")

            def delivered(sentinel: str = sentinel) -> list[str] | None:
                ids = [e["attributes"]["id"] for e in scenarios.received(kube, ns, "app=receiver")]
                return ids if sentinel in ids else None

            ids = waiting.eventually(delivered, 180, f"{sentinel} after the stream", 1.0)
        ids = [i for i in ids if "-sentinel-" not in i]
        lost, _ = _report("InMemoryChannel Broker (async-handler)", ids, run, DURABLE_COUNT)
        assert lost > 0, "the in-memory broker lost nothing: the pod was deleted too late?"
    finally:
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _assigned(kube: cluster.Kube, pod: str, group: str) -> list[str]:
    """The partitions `pod` last logged as assigned to it for `group`."""
    logs = kube.kubectl("-n", SYSTEM, "logs", pod, check=False).stdout
    latest: list[str] = []
    for line in logs.splitlines():
        try:
            message = str(json.loads(line).get("message", ""))
        except ValueError:
            continue
        if message.startswith(f"Group {group}: assigned "):
            shown = message.removeprefix(f"Group {group}: assigned ").rstrip(".")
            latest = [] if shown == "no partitions" else shown.split(", ")
        elif message.startswith(f"Group {group}: revoked "):
            latest = []
    return latest


def _running_pods(kube: cluster.Kube) -> list[str]:
    found = kube.get_json("pods", "-n", SYSTEM, "-l", "app.kubernetes.io/name=kafka-broker")
    pods: list[dict[str, Any]] = found["items"]  # type: ignore[assignment]
    return [
        p["metadata"]["name"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or [])
    ]  # fmt: skip


def _delivered_rate(kube: cluster.Kube, ns: str, url: str, run: str, count: int) -> float:
    """Events/s from the first POST until the last event reached the subscriber."""
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(
            lambda i: accept(url, f"{run}-{i}", "dev.example.order", "/e2e/kafka-broker"),
            range(count),
        ))  # fmt: skip

    def complete() -> bool:
        ids = {e["attributes"]["id"] for e in scenarios.received(kube, ns, RECEIVER)}
        return len({i for i in ids if i.startswith(f"{run}-")}) >= count

    waiting.eventually(complete, 300, f"{count} events of {run} delivered", 0.5)
    return count / (time.monotonic() - started)


def test_two_replicas_share_each_trigger_group_and_losing_one_loses_nothing(
    kube: cluster.Kube, tutorial: str
) -> None:
    url = broker_url(kube, tutorial, "knative-kafka-broker")
    group = f"knative-trigger-{tutorial}-order-trigger"
    count = 2000
    one = _delivered_rate(kube, tutorial, url, f"r1{uuid.uuid4().hex[:5]}", count)
    kube.kubectl("-n", SYSTEM, "scale", "deployment/kafka-broker", "--replicas=2")
    try:
        kube.kubectl("-n", SYSTEM, "rollout", "status", "deployment/kafka-broker",
                     "--timeout=180s")  # fmt: skip

        def both_consume() -> dict[str, list[str]] | None:
            pods = _running_pods(kube)
            shares = {pod: _assigned(kube, pod, group) for pod in pods}
            return shares if len(pods) == 2 and all(shares.values()) else None

        shares = waiting.eventually(both_consume, 120, "partitions on both replicas", 2.0)
        two = _delivered_rate(kube, tutorial, url, f"r2{uuid.uuid4().hex[:5]}", count)
        print(f"\nKafka Broker, 1 Trigger, {count} events end to end: "  # noqa: T201
              f"1 replica {one:.0f} events/s, 2 replicas {two:.0f} events/s; "
              f"partitions per replica {[len(v) for v in shares.values()]}")  # fmt: skip
        assert sorted(p for v in shares.values() for p in v) == sorted(
            f"knative-broker-{tutorial}-knative-kafka-broker-{i}" for i in range(10)
        )
        # losing one replica: its partitions move to the other, nothing is lost
        run = f"k{uuid.uuid4().hex[:6]}"
        victim = _running_pods(kube)[0]
        accepted = Counter[str]()
        lock = threading.Lock()

        def one_event(i: int) -> None:
            accept(url, f"{run}-{i}", "dev.example.order", "/e2e/kafka-broker")
            with lock:
                accepted["n"] += 1
                if accepted["n"] == count // 3:
                    kube.kubectl("-n", SYSTEM, "delete", "pod", victim, "--wait=false",
                                 "--grace-period=0", "--force")  # fmt: skip

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(one_event, range(count)))

        def delivered() -> list[str] | None:
            ids = [e["attributes"]["id"] for e in scenarios.received(kube, tutorial, RECEIVER)]
            return ids if len({i for i in ids if i.startswith(f"{run}-")}) >= count else None

        ids = waiting.eventually(delivered, 300, f"all {count} events delivered", 2.0)
        lost, _ = _report("Kafka Broker, one of two replicas killed", ids, run, count)
        assert lost == 0
    finally:
        kube.kubectl("-n", SYSTEM, "scale", "deployment/kafka-broker", "--replicas=1")
