"""Benchmark the broker on loopback: events through the broker ingress and Trigger filters.

    hack/cluster up && .venv/bin/python -m bench.broker [--seconds 10] [--dialect attributes]
        [--results [DIR]]   (JSON + SVG chart, see bench/results.py)

For each case (1 Trigger; 10 Triggers all matching; 10 Triggers of which 1 matches) a fresh
namespace gets what the controller would make for a Broker `default`: its trigger channel
(`default-kne-trigger`, an InMemoryChannel labelled for the broker) with one subscription per
Trigger naming the broker filter, and the Triggers themselves with their subscriber resolved
to a fast loopback server (one process, answering 202 at once). `python -m dispatcher` runs
against the real API server; the load generator of `bench.dispatcher` (own process, raw
keep-alive HTTP/1.1) POSTs binary CloudEvents to `/<ns>/default` on the broker ingress, first
as fast as it can (closed loop), then at `--rate` events/s. Printed per run: accepted events/s,
deliveries/s at the subscribers, latency producer send -> subscriber receipt (p50/p99), 429s,
the dispatcher's RSS and CPU per accepted event (and that of load generator + subscribers).
`--dialect cesql` gives every Trigger the equivalent CESQL filter instead of
`filter.attributes`. Everything listens on 127.0.0.1.

`--class` picks the broker class: `MTChannelBasedBroker` (above), `Kafka` (the local
cluster's Kafka, `hack/cluster up --kafka`: the bench plays the controller again -- the
Broker's topic `knative-broker-<ns>-default` with `--partitions`, its `status.annotations`,
each Trigger's consumer group with start offsets committed and `SubscriptionReady` True --
and runs `python -m dispatcher.kafkabroker`; the same load, 1 and 10 matching Triggers), or
`both` (the default: the Kafka rows next to the channel broker's, in one run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import uuid
from typing import Any

import aiohttp
import uvloop
from kubernetes_asyncio import client, config

from bench import dispatcher as channel_bench
from bench import knative, results
from hack import ports
from hack.localcluster import cluster as localcluster
from hack.localcluster import kafka as localkafka
from kevents import errors, kafka

HOST = channel_bench.HOST
REPO = pathlib.Path(__file__).resolve().parents[1]
EVENTING = ("eventing.knative.dev", "v1")
FILTER = "http://broker-filter.kevents-system.svc.cluster.local/triggers"
CASES = ((1, 1), (10, 10), (10, 1))
KNATIVE_CASES = ((1, 1), (10, 10))
KAFKA_CASES = ((1, 1), (10, 10))
"""(Triggers, of which matching every event)."""
RESULTS = results.Recorder(
    "broker",
    "Broker ingress -> Trigger filters -> subscribers (loopback)",
    rate=("events_per_s", "accepted events/s at maximum load"),
    latency=("p99_ms", "p99 send->subscriber latency at the offered rate (ms)"),
)


def _filter(matching: bool, index: int, dialect: str) -> dict[str, Any]:
    """The load's events are type dev.bench.order, source /bench."""
    source = "/bench" if matching else f"/elsewhere-{index}"
    if dialect == "cesql":
        return {"filters": [{"cesql": f"type = 'dev.bench.order' AND source = '{source}'"}]}
    return {"filter": {"attributes": {"type": "dev.bench.order", "source": source}}}


async def _setup(
    api: client.ApiClient,
    namespace: str,
    urls: list[str],
    matching: int,
    dialect: str,
    ingress: str,
    filter_base: str = FILTER,
    annotations: dict[str, str] | None = None,
) -> None:
    """Triggers `t<i>` with their subscriber resolved, and the trigger channel subscribing
    `filter_base` for each (annotated with `annotations`)."""
    objects = client.CustomObjectsApi(api)
    entries = []
    for index, url in enumerate(urls):
        name = f"t{index}"
        body = {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Trigger",
            "metadata": {"name": name},
            "spec": {
                "broker": "default",
                "subscriber": {"uri": url},
                **_filter(index < matching, index, dialect),
            },
        }
        made = await objects.create_namespaced_custom_object(*EVENTING, namespace, "triggers", body)
        await objects.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
            *EVENTING, namespace, "triggers", name, {"status": {"subscriberUri": url}},
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        uid = made["metadata"]["uid"]
        entries.append(
            {"uid": f"s{index}", "generation": 1, "replyUri": ingress,
             "subscriberUri": f"{filter_base}/{namespace}/{name}/{uid}"}
        )  # fmt: skip
    channel = {
        "apiVersion": "messaging.knative.dev/v1",
        "kind": "InMemoryChannel",
        "metadata": {
            "name": "default-kne-trigger",
            "labels": {
                "eventing.knative.dev/broker": "default",
                "eventing.knative.dev/brokerEverything": "true",
            },
            "annotations": annotations or {},
        },
        "spec": {"subscribers": entries},
    }
    await objects.create_namespaced_custom_object(
        "messaging.knative.dev", "v1", namespace, "inmemorychannels", channel
    )


ASYNC = {"messaging.knative.dev/async-handler": "true"}


async def run_one_knative(
    api: client.ApiClient,
    kubeconfig: str,
    args: argparse.Namespace,
    count: int,
    matching: int,
    system: str,
    mode: str,
) -> None:
    """Knative's MT broker: its ingress and filter, and its IMC dispatcher for the trigger
    channel, with what its controller would write (Broker status, channel Ready)."""
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    sub_proc = await channel_bench._spawn(
        *channel_bench.BENCH, "--serve-subscribers", str(count), pin="load"
    )
    port, filter_port = ports.free_port(), ports.free_port()
    procs: list[asyncio.subprocess.Process] = []
    try:
        assert sub_proc.stdout is not None
        sub_ports = json.loads(await sub_proc.stdout.readline())
        urls = [f"http://{HOST}:{p}/" for p in sub_ports]
        path = f"/{namespace}/default"
        ingress_url = f"http://{HOST}:{port}{path}"
        annotations = {**knative.SCOPE_ANNOTATION, **(ASYNC if mode == "async" else {})}
        await _setup(
            api, namespace, urls, matching, args.dialect, ingress_url,
            f"http://{HOST}:{filter_port}/triggers", annotations,
        )  # fmt: skip
        objects = client.CustomObjectsApi(api)
        channel = "default-kne-trigger"
        await objects.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
            "messaging.knative.dev", "v1", namespace, "inmemorychannels", channel,
            knative.ready_status(namespace, channel),
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        broker = {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Broker",
            "metadata": {
                "name": "default",
                # a class no kevents controller serves: only Knative's binaries act on it
                "annotations": {"eventing.knative.dev/broker.class": "KnativePeerBench"},
            },
        }
        await objects.create_namespaced_custom_object(*EVENTING, namespace, "brokers", broker)
        channel_url = f"http://{HOST}:{knative.IMC_DISPATCHER_PORTS[0]}/{namespace}/{channel}"
        await objects.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
            *EVENTING, namespace, "brokers", "default",
            knative.broker_status(channel_url, ingress_url),
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        pin = channel_bench.PINS.get("target", "")
        procs.append(await knative.spawn_imc_dispatcher(kubeconfig, system, namespace, pin))
        procs.append(await knative.spawn_mt_broker(kubeconfig, system, port, filter_port, pin))
        label = f"Knative MT broker ({mode}) {count} trigger(s), {matching} match"
        async with aiohttp.ClientSession() as session:
            await channel_bench._until_accepting(session, ingress_url)
            for rate in (0.0, args.rate):
                await channel_bench._phase(
                    session, args, label, count, port, path, sub_ports[0],
                    [each.pid for each in procs], sub_proc.pid, rate, RESULTS,
                    f"Knative MT broker ({mode})",
                    f"{count} trigger{'s' * (count > 1)}, {matching} matching",
                )  # fmt: skip
    finally:
        for proc in (*procs, sub_proc):
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                await proc.wait()
        await core.delete_namespace(namespace)


async def run_one(
    api: client.ApiClient,
    kubeconfig: str,
    args: argparse.Namespace,
    count: int,
    matching: int,
    mode: str = "sync",
) -> None:
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    sub_proc = await channel_bench._spawn(*channel_bench.BENCH, "--serve-subscribers", str(count))
    port = ports.free_port()
    target = None
    try:
        assert sub_proc.stdout is not None
        sub_ports = json.loads(await sub_proc.stdout.readline())
        urls = [f"http://{HOST}:{p}/" for p in sub_ports]
        path = f"/{namespace}/default"
        await _setup(
            api, namespace, urls, matching, args.dialect, f"http://{HOST}:{port}{path}",
            annotations=ASYNC if mode == "async" else None,
        )  # fmt: skip
        env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "KEVENTS_INGRESS_HOST": HOST,
            "KEVENTS_INGRESS_PORT": str(ports.free_port()),
            "KEVENTS_BROKER_INGRESS_PORT": str(port),
            "KEVENTS_PROBES_HOST": HOST,
            "KEVENTS_PROBES_PORT": str(ports.free_port()),
            "METRICS_PROMETHEUS_HOST": HOST,
            "METRICS_PROMETHEUS_PORT": str(ports.free_port()),
            "KEVENTS_LOG_LEVEL": "WARNING",
            "KEVENTS_REPORT_STATUS": "false",
        }
        target = await channel_bench._spawn("-m", "dispatcher", env=env)
        label = f"broker ({mode}) {count} trigger(s), {matching} match"
        async with aiohttp.ClientSession() as session:
            await channel_bench._until_accepting(session, f"http://{HOST}:{port}{path}")
            for rate in (0.0, args.rate):
                await channel_bench._phase(
                    session, args, label, count, port, path, sub_ports[0], target.pid,
                    sub_proc.pid, rate, RESULTS, f"kevents broker ({args.dialect}, {mode})",
                    f"{count} trigger{'s' * (count > 1)}, {matching} matching",
                )  # fmt: skip
    finally:
        for proc in (target, sub_proc):
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                await proc.wait()
        await core.delete_namespace(namespace)


async def _setup_kafka(
    api: client.ApiClient, namespace: str, urls: list[str], bootstrap: str, partitions: int
) -> None:
    """What the controller makes for a Kafka Broker `default` and its Triggers."""
    objects = client.CustomObjectsApi(api)
    topic = f"knative-broker-{namespace}-default"
    conf = kafka.client_config(bootstrap)
    await kafka.ensure_topic(conf, topic, partitions=partitions)
    broker = {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": {"name": "default",
                     "annotations": {"eventing.knative.dev/broker.class": "Kafka"}},
        "spec": {"config": {"apiVersion": "v1", "kind": "ConfigMap", "name": "unused"}},
    }  # fmt: skip
    await objects.create_namespaced_custom_object(*EVENTING, namespace, "brokers", broker)
    await objects.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
        *EVENTING, namespace, "brokers", "default",
        {"status": {"annotations": {"bootstrap.servers": bootstrap, "default.topic": topic}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    ready = [{"type": "SubscriptionReady", "status": "True"}]
    for index, url in enumerate(urls):
        name = f"t{index}"
        body = {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Trigger",
            "metadata": {"name": name},
            "spec": {"broker": "default", "subscriber": {"uri": url},
                     **_filter(True, index, "attributes")},
        }  # fmt: skip
        await objects.create_namespaced_custom_object(*EVENTING, namespace, "triggers", body)
        await _init_offsets(conf, f"knative-trigger-{namespace}-{name}", topic)
        await objects.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
            *EVENTING, namespace, "triggers", name,
            {"status": {"subscriberUri": url, "conditions": ready}},
            _content_type="application/merge-patch+json",
        )  # fmt: skip


async def _init_offsets(conf: dict[str, Any], group: str, topic: str) -> None:
    """The group's start offsets at the topic's end, as the Trigger reconciler commits them;
    tried again while the new topic's partitions have no leader yet (Kafka answers "Not
    leader for partition" for a moment after creating it; the controller requeues)."""
    for attempt in range(20):
        try:
            await kafka.init_offsets(conf, group, [topic], "latest")
            return
        except errors.KafkaError:
            if attempt == 19:
                raise
            await asyncio.sleep(0.5)


async def run_one_kafka(
    api: client.ApiClient, kubeconfig: str, args: argparse.Namespace, count: int, bootstrap: str
) -> None:
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    sub_proc = await channel_bench._spawn(*channel_bench.BENCH, "--serve-subscribers", str(count))
    port = ports.free_port()
    target = None
    try:
        assert sub_proc.stdout is not None
        sub_ports = json.loads(await sub_proc.stdout.readline())
        urls = [f"http://{HOST}:{p}/" for p in sub_ports]
        path = f"/{namespace}/default"
        await _setup_kafka(api, namespace, urls, bootstrap, args.partitions)
        env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "KEVENTS_INGRESS_HOST": HOST,
            "KEVENTS_INGRESS_PORT": str(port),
            "KEVENTS_CHANNEL_INGRESS_PORT": str(ports.free_port()),
            "KEVENTS_PROBES_HOST": HOST,
            "KEVENTS_PROBES_PORT": str(ports.free_port()),
            "METRICS_PROMETHEUS_HOST": HOST,
            "METRICS_PROMETHEUS_PORT": str(ports.free_port()),
            "KEVENTS_LOG_LEVEL": "WARNING",
            "KEVENTS_KAFKA_BROKER_REPLY_URL": f"http://{HOST}:{port}",
        }
        target = await channel_bench._spawn("-m", "dispatcher.kafkabroker", env=env)
        label = f"kafka broker {count} trigger(s)"
        async with aiohttp.ClientSession() as session:
            await channel_bench._until_accepting(session, f"http://{HOST}:{port}{path}")
            for rate in (0.0, args.rate):
                await channel_bench._phase(
                    session, args, label, count, port, path, sub_ports[0], target.pid,
                    sub_proc.pid, rate, RESULTS, f"kevents Kafka broker ({args.partitions} "
                    "partitions)", f"{count} trigger{'s' * (count > 1)}, {count} matching",
                )  # fmt: skip
    finally:
        for proc in (target, sub_proc):
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                await proc.wait()
        await core.delete_namespace(namespace)
        await kafka.delete_topic(
            kafka.client_config(bootstrap), f"knative-broker-{namespace}-default"
        )


async def main(args: argparse.Namespace) -> None:
    directory = localcluster.state_dir()
    kubectl = localcluster.kubectl(directory)
    manifests = REPO / "manifests"
    kubectl(
        "apply", "-f", str(manifests / "300-inmemorychannel.yaml"),
        "-f", str(manifests / "300-trigger.yaml"), "-f", str(manifests / "300-broker.yaml"),
    )  # fmt: skip
    kubeconfig = str(directory / "admin.kubeconfig")
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    print(
        f"{os.cpu_count()} CPUs, {args.connections} connections, {args.seconds:.0f} s per run, "
        f"{args.dialect} filters, subscribers answer 202 at once "
        "(latency: producer send -> subscriber receipt)"
    )
    async with client.ApiClient(configuration=cfg) as api:
        if args.broker_class in ("both", "MTChannelBasedBroker"):
            for count, matching in CASES:
                if args.knative and (count, matching) in KNATIVE_CASES:
                    async with knative.system_namespace(api) as system:
                        for mode in args.knative:
                            await run_one_knative(
                                api, kubeconfig, args, count, matching, system, mode
                            )
                for mode in args.mode:
                    await run_one(api, kubeconfig, args, count, matching, mode)
        if args.broker_class in ("both", "Kafka"):
            bootstrap = _kafka_bootstrap(directory)
            for count, _ in KAFKA_CASES:
                await run_one_kafka(api, kubeconfig, args, count, bootstrap)
    RESULTS.save(args)
    channel_bench._print_ratios(
        lambda label: label if label.startswith("Knative") else "Knative MT " + label
    )


def _kafka_bootstrap(directory: pathlib.Path) -> str:
    info = json.loads(localkafka.credentials_path(directory).read_text())
    return str(info["bootstrap"])


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000.0, help="offered events/s, 2nd phase")
    parser.add_argument("--dialect", choices=["attributes", "cesql"], default="attributes")
    parser.add_argument(
        "--class", dest="broker_class", default="both",
        choices=["both", "MTChannelBasedBroker", "Kafka"],
    )  # fmt: skip
    parser.add_argument("--partitions", type=int, default=10, help="Kafka Broker topic")
    parser.add_argument(
        "--mode", nargs="+", choices=("sync", "async"), default=["sync"],
        help="our trigger channel's acknowledgement (async: the async-handler annotation)",
    )  # fmt: skip
    parser.add_argument(
        "--knative", nargs="*", choices=("sync", "async"),
        help="also run Knative's MT broker ingress + filter + IMC dispatcher "
        "(hack/build-knative-peers) with 1 and 10 matching Triggers, in these modes "
        "(both when none given)",
    )  # fmt: skip
    results.add_argument(parser)
    parsed = parser.parse_args()
    if parsed.knative == []:
        parsed.knative = ["sync", "async"]
    return parsed


if __name__ == "__main__":
    uvloop.run(main(_arguments()))
