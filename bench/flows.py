"""Benchmark a 3-step Sequence through the dispatcher on loopback, against one channel with
one subscriber (the baseline) in the same run.

    hack/cluster up && .venv/bin/python -m bench.flows [--seconds 10] [--steps 3]
        [--results [DIR]]   (JSON + SVG chart, see bench/results.py)

A fresh namespace gets the channels a Sequence makes (`<seq>-kn-sequence-<i>`, the names of
`controller.flows.resources`), with the subscriber entries its Subscriptions write: channel i
delivers to step i and sends the step's reply to channel i+1; the last reply goes to the
final sink. Steps are loopback servers in one process that answer each event with itself,
data extended (a reply, as a workflow step does); the final sink records the latency from
the producer's send to its receipt (`ce-benchsent`, CLOCK_MONOTONIC, carried through the
steps as an extension). `python -m dispatcher` runs against the real API server in the
default synchronous mode, so a 202 to the producer means the event went through every step.
The baseline channel delivers straight to the final sink. The load generator, the phases
(maximum throughput, then `--rate` events/s offered) and the printed columns are those of
`bench.dispatcher`; "deliveries" counts arrivals at the final sink.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid

import aiohttp
import uvloop
from aiohttp import web
from kubernetes_asyncio import client, config

from bench import dispatcher as base
from bench import results
from controller.flows import resources
from hack import ports
from hack.localcluster import cluster as localcluster

HOST = base.HOST
BENCH = ("-m", "bench.flows")
RESULTS = results.Recorder(
    "flows",
    "A Sequence of steps vs one channel (the baseline), through the dispatcher (loopback)",
    rate=("events_per_s", "accepted events/s at maximum load"),
    latency=("p99_ms", "p99 send->final sink latency at the offered rate (ms)"),
)
SEQUENCE = "bench"


async def _servers(steps: int) -> None:
    """`steps` step servers and the final sink (with /stats and /reset) on loopback."""
    latencies: list[int] = []

    async def step(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("ce-")}
        headers["Content-Type"] = request.headers.get("Content-Type", "application/json")
        return web.Response(status=200, headers=headers, body=body + b" ")

    async def final(request: web.Request) -> web.Response:
        await request.read()
        sent = request.headers.get("ce-benchsent")
        if sent is not None:
            latencies.append(time.monotonic_ns() - int(sent))
        return web.Response(status=202)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"count": len(latencies), "latencies": latencies})

    async def reset(request: web.Request) -> web.Response:
        latencies.clear()
        return web.Response()

    step_app = web.Application()
    step_app.router.add_post("/", step)
    final_app = web.Application()
    final_app.router.add_post("/", final)
    final_app.router.add_get("/stats", stats)
    final_app.router.add_post("/reset", reset)
    bound = []
    for app, count in ((step_app, steps), (final_app, 1)):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        for _ in range(count):
            await web.TCPSite(runner, HOST, 0).start()
            bound.append(runner.addresses[-1][1])
    sys.stdout.write(json.dumps(bound) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


def _channel(name: str, subscriber: str, reply: str | None) -> dict[str, object]:
    entry = {"uid": f"u-{name}", "generation": 1, "subscriberUri": subscriber}
    if reply is not None:
        entry["replyUri"] = reply
    return {
        "apiVersion": "messaging.knative.dev/v1",
        "kind": "InMemoryChannel",
        "metadata": {"name": name},
        "spec": {"subscribers": [entry]},
    }


def _wiring(namespace: str, port: int, step_urls: list[str], final: str) -> list[dict[str, object]]:
    """The channels of a Sequence of len(step_urls) steps, entries as its Subscriptions write."""
    names = [resources.sequence_channel_name(SEQUENCE, i) for i in range(len(step_urls))]
    ingress = [f"http://{HOST}:{port}/{namespace}/{name}" for name in names]
    return [
        _channel(name, url, ingress[i + 1] if i + 1 < len(names) else final)
        for i, (name, url) in enumerate(zip(names, step_urls, strict=True))
    ]


async def run_one(
    api: client.ApiClient, kubeconfig: str, args: argparse.Namespace, steps: int
) -> None:
    """`steps` 0: the baseline (one channel, the final sink its only subscriber)."""
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    servers = await base._spawn(*BENCH, "--serve", str(steps))
    port = ports.free_port(HOST)
    target: asyncio.subprocess.Process | None = None
    try:
        assert servers.stdout is not None
        bound = json.loads(await servers.stdout.readline())
        final_port = bound[-1]
        final = f"http://{HOST}:{final_port}/"
        if steps == 0:
            label, channels = "1 channel, 1 subscriber", [_channel("bench", final, None)]
        else:
            label = f"Sequence of {steps} steps"
            channels = _wiring(namespace, port, [f"http://{HOST}:{p}/" for p in bound[:-1]], final)
        objects = client.CustomObjectsApi(api)
        for body in channels:
            await objects.create_namespaced_custom_object(
                "messaging.knative.dev", "v1", namespace, "inmemorychannels", body
            )
        env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "KEVENTS_INGRESS_HOST": HOST,
            "KEVENTS_INGRESS_PORT": str(port),
            "KEVENTS_PROBES_HOST": HOST,
            "KEVENTS_PROBES_PORT": str(ports.free_port(HOST)),
            "METRICS_PROMETHEUS_HOST": HOST,
            "METRICS_PROMETHEUS_PORT": str(ports.free_port(HOST)),
            "KEVENTS_LOG_LEVEL": "WARNING",
            "KEVENTS_REPORT_STATUS": "false",
        }
        target = await base._spawn("-m", "dispatcher", "--workers", str(args.workers), env=env)
        first = channels[0]["metadata"]["name"]  # type: ignore[index]
        path = f"/{namespace}/{first}"
        async with aiohttp.ClientSession() as session:
            await base._until_accepting(session, f"http://{HOST}:{port}{path}")
            for rate in (0.0, args.rate):
                await base._phase(
                    session, args, label, max(steps, 1), port, path, final_port, target.pid,
                    servers.pid, rate, RESULTS, f"kevents --workers {args.workers}", label,
                )  # fmt: skip
    finally:
        for proc in (target, servers):
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):  # it may have just exited
                    proc.terminate()
                await proc.wait()
        await core.delete_namespace(namespace)


async def main(args: argparse.Namespace) -> None:
    kubeconfig = str(localcluster.state_dir() / "admin.kubeconfig")
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    print(
        f"{os.cpu_count()} CPUs, {args.connections} connections, {args.seconds:.0f} s per run, "
        f"dispatcher --workers {args.workers} (sync), steps reply at once "
        "(latency: producer send -> final sink receipt)"
    )
    async with client.ApiClient(configuration=cfg) as api:
        await run_one(api, kubeconfig, args, 0)
        await run_one(api, kubeconfig, args, args.steps)
    RESULTS.save(args)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--rate", type=float, default=500.0, help="offered events/s of the latency phase"
    )
    parser.add_argument("--serve", type=int, metavar="STEPS")
    results.add_argument(parser)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    if arguments.serve is not None:
        uvloop.run(_servers(arguments.serve))
    else:
        uvloop.run(main(arguments))
