"""Benchmark the KafkaSink ingress against the raw producer it is built on, on the local broker.

    hack/cluster up --kafka && .venv/bin/python -m bench.kafkasink [--seconds 10]
        [--concurrency 1 64] [--size 512] [--partitions 3] [--results [DIR]]

A fresh namespace gets a KafkaSink on a fresh topic (created here, so no controller is
needed); `python -m dispatcher.kafkasink` runs as its own process against the real API server
and broker, and a closed loop of `--concurrency` producers in this process POSTs binary
CloudEvents to `/<ns>/<sink>` over keep-alive connections for `--seconds` each. Printed per
concurrency: events/s answered 202 (each stored with `acks=all` before its answer), latency
p50/p99 as the producer sees it, and the ingress process's CPU time per event and RSS. The
baseline is the same closed loop of awaited `kevents.kafka.Producer.send()` calls in this
process (no HTTP, no CloudEvent decoding): what the ingress adds is the difference. Kafka's
own `ProducerPerformance` for the same broker is in `bench/kafka.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import uvloop
from kubernetes_asyncio import client, config

from bench import results
from hack import ports, processes
from hack.localcluster import cluster
from hack.localcluster import kafka as localkafka
from kevents import kafka

HOST = "127.0.0.1"
REPO = pathlib.Path(__file__).resolve().parents[1]


async def _closed_loop(
    seconds: float, concurrency: int, one: Callable[[int], Awaitable[bool]]
) -> tuple[int, int, list[float]]:
    """(ok, failed, latencies) of `concurrency` workers calling `one` for `seconds`."""
    latencies: list[float] = []
    counts = [0, 0]
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        n = index
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            ok = await one(n)
            latencies.append(time.perf_counter() - started)
            counts[0 if ok else 1] += 1
            n += concurrency

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return counts[0], counts[1], latencies


RESULTS = results.Recorder(
    "kafkasink",
    "KafkaSink ingress vs the raw producer it is built on (local Kafka, acks=all)",
    rate=("events_per_s", "events/s stored"),
    latency=("p99_ms", "p99 latency (ms)"),
)


def _line(label: str, ok: int, failed: int, seconds: float, latencies: list[float]) -> str:
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    system, _, case = label.partition(", ")
    RESULTS.add("kevents " + system if system.startswith("KafkaSink") else system, case,
                events_per_s=ok / seconds, p50_ms=q[49] * 1000, p99_ms=q[98] * 1000)  # fmt: skip
    return (
        f"{label:<34} {ok / seconds:>8,.0f} events/s   p50 {q[49] * 1000:6.1f} ms"
        f"   p99 {q[98] * 1000:7.1f} ms" + (f"   ({failed} not 202)" if failed else "")
    )


async def _until_served(session: aiohttp.ClientSession, url: str, body: bytes) -> None:
    headers = _headers(0)
    for _ in range(600):
        with contextlib.suppress(aiohttp.ClientError):
            async with session.post(url, data=body, headers=headers) as response:
                if response.status == 202:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered 202")


def _headers(n: int) -> dict[str, str]:
    return {
        "ce-specversion": "1.0", "ce-id": f"bench-{n}", "ce-type": "dev.kevents.bench",
        "ce-source": "/bench/kafkasink", "content-type": "application/json",
    }  # fmt: skip


async def main(args: argparse.Namespace, info: dict[str, str]) -> None:
    bootstrap = info["bootstrap"]
    kubeconfig = str(cluster.state_dir() / "admin.kubeconfig")
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    body = json.dumps({"pad": "x" * max(0, args.size - 11)}).encode()
    print(f"Kafka {info.get('version', '?')} at {bootstrap}: {args.size}-byte events, "
          f"{args.partitions} partitions, {args.seconds:g} s per run")  # fmt: skip
    namespace = f"bench-kafkasink-{uuid.uuid4().hex[:6]}"
    topic = f"bench-kafkasink-{uuid.uuid4().hex[:8]}"
    producer_config = kafka.client_config(bootstrap)
    await kafka.ensure_topic(producer_config, topic, partitions=args.partitions)
    proc: asyncio.subprocess.Process | None = None
    async with client.ApiClient(configuration=cfg) as api:
        core = client.CoreV1Api(api)
        await core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
        )
        try:
            await client.CustomObjectsApi(api).create_namespaced_custom_object(
                "eventing.knative.dev", "v1alpha1", namespace, "kafkasinks",
                {"apiVersion": "eventing.knative.dev/v1alpha1", "kind": "KafkaSink",
                 "metadata": {"name": "bench"},
                 "spec": {"topic": topic, "bootstrapServers": [bootstrap]}},
            )  # fmt: skip
            port = ports.free_port(HOST)
            env = {
                **os.environ, "KUBECONFIG": kubeconfig,
                "KEVENTS_INGRESS_HOST": HOST, "KEVENTS_INGRESS_PORT": str(port),
                "KEVENTS_PROBES_HOST": HOST, "KEVENTS_PROBES_PORT": str(ports.free_port(HOST)),
                "METRICS_PROMETHEUS_HOST": HOST,
                "METRICS_PROMETHEUS_PORT": str(ports.free_port(HOST)),
                "KEVENTS_LOG_LEVEL": "WARNING",
            }  # fmt: skip
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "dispatcher.kafkasink", env=env, cwd=REPO
            )
            url = f"http://{HOST}:{port}/{namespace}/bench"
            connector = aiohttp.TCPConnector(limit=max(args.concurrency))
            async with aiohttp.ClientSession(connector=connector) as session:
                await _until_served(session, url, body)

                async def post(n: int) -> bool:
                    async with session.post(url, data=body, headers=_headers(n)) as response:
                        await response.read()
                        return response.status == 202

                for concurrency in args.concurrency:
                    cpu, own = processes.cpu_seconds(proc.pid), processes.rusage_cpu_seconds()
                    ok, failed, latencies = await _closed_loop(args.seconds, concurrency, post)
                    used, loader = (
                        processes.cpu_seconds(proc.pid) - cpu,
                        processes.rusage_cpu_seconds() - own,
                    )
                    print(
                        _line(f"KafkaSink ingress, {concurrency} in flight", ok, failed,
                              args.seconds, latencies)
                        + f"   {used / max(ok, 1) * 1e6:6.0f} µs CPU/event"
                        f" (load generator {loader / max(ok, 1) * 1e6:.0f})"
                        f"   RSS {processes.rss_mib(proc.pid):.0f} MiB",
                        flush=True,
                    )  # fmt: skip
            async with kafka.Producer(producer_config) as producer:
                headers = [(k.replace("ce-", "ce_"), v.encode()) for k, v in _headers(0).items()]

                async def send(n: int) -> bool:
                    await producer.send(topic, body, headers=headers)
                    return True

                for concurrency in args.concurrency:
                    ok, failed, latencies = await _closed_loop(args.seconds, concurrency, send)
                    print(_line(f"raw Producer.send, {concurrency} in flight", ok, failed,
                                args.seconds, latencies), flush=True)  # fmt: skip
        finally:
            if proc is not None and proc.returncode is None:
                proc.terminate()
                await proc.wait()
            await core.delete_namespace(namespace)
            await kafka.delete_topic(producer_config, topic)
    RESULTS.save(args)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--size", type=int, default=512, help="approximate event body bytes")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument(
        "--credentials",
        default=str(localkafka.credentials_path(cluster.state_dir())),
        help="the broker's credentials.json (hack/cluster up --kafka writes it)",
    )
    results.add_argument(parser)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    uvloop.run(main(arguments, json.loads(pathlib.Path(arguments.credentials).read_text())))
