"""Benchmark the PingSource adapter: N PingSources on one adapter, all ticking together.

    hack/cluster up && .venv/bin/python -m bench.ping_source [--count 10000] [--ticks 2]
        [--knative] [--results [DIR]]   (JSON + SVG chart, see bench/results.py)

Creates N PingSources (`* * * * *`, every one firing at the same second: the worst burst) in a
fresh namespace, concurrently, each with `status.sinkUri` patched to a loopback sink (what the
controller will do), and reports the creation rate separately. Then starts
`python -m sources.ping` (leader election on, Lease in that namespace) and, for each of
`--ticks` minute boundaries, prints: tick lateness at the sink (arrival minus the scheduled
second) p50/p99/max, the adapter's own lateness p50/p99 (from its histogram), the adapter's
CPU seconds for the burst, and its RSS. `--knative` then stops ours and runs Knative's
multi-tenant adapter (`cmd/mtping`, hack/build-knative-peers; the sources' status also
carries the Ready condition it requires) over the same sources for as many ticks. Knative's
adapter stamps `time` when it sends (after a random delay of up to 500 ms it adds on
purpose), ours the scheduled second: lateness is measured from the minute boundary for both.
Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid

import aiohttp
from aiohttp import web
from kubernetes_asyncio import client, config

from bench import knative, results
from hack import ports, processes
from hack.localcluster import cluster as localcluster
from kevents import cloudevent

GROUP, VERSION, PLURAL = "sources.knative.dev", "v1", "pingsources"
READY = {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}
"""What Knative's mtping requires of a source's status before it schedules it."""
KEVENTS, KNATIVE = "kevents PingSource adapter", "Knative mtping"


def _histogram_quantile(text: str, q: float) -> float:
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith("kevents_ping_tick_lateness_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0.0
    for bound, count in buckets:
        if count >= q * total:
            return bound
    return float("nan")


async def create_sources(api: client.ApiClient, namespace: str, count: int, sink: str) -> float:
    objects = client.CustomObjectsApi(api)
    limit = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with limit:
            body = {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "PingSource",
                "metadata": {"name": f"p{i}", "namespace": namespace},
                "spec": {"schedule": "* * * * *", "sink": {"uri": sink}, "data": f"n={i}"},
            }  # fmt: skip
            await objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
            await objects.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
                GROUP, VERSION, namespace, PLURAL, f"p{i}", {"status": READY | {"sinkUri": sink}},
                _content_type="application/merge-patch+json",
            )  # fmt: skip

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=2)
    parser.add_argument(
        "--knative", action="store_true", help="then Knative's mtping (hack/build-knative-peers)"
    )
    results.add_argument(parser)
    args = parser.parse_args()
    kubeconfig = str(localcluster.state_dir() / "admin.kubeconfig")
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = 64
    arrivals: dict[int, list[float]] = {}
    got = asyncio.Event()

    async def sink(request: web.Request) -> web.Response:
        event = cloudevent.decode(dict(request.headers), await request.read())
        now = time.time()
        stamp = event.get_time()
        tick = (int(stamp.timestamp() if stamp is not None else now) // 60) * 60
        arrivals.setdefault(tick, []).append(now - tick)
        got.set()
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/", sink)
    app_runner = web.AppRunner(app, access_log=None)
    await app_runner.setup()
    site = web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    sink_url = f"http://127.0.0.1:{app_runner.addresses[0][1]}/"
    namespace = f"bench-ping-{uuid.uuid4().hex[:6]}"
    async with client.ApiClient(configuration=cfg) as api:
        core = client.CoreV1Api(api)
        await core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
        )
        try:
            took = await create_sources(api, namespace, args.count, sink_url)
            print(f"created {args.count} PingSources (+ status patch) in {took:.1f} s "
                  f"({args.count / took:.0f}/s)")  # fmt: skip
            metrics_port, probes_port = ports.free_port(), ports.free_port()
            env = {
                **os.environ, "KUBECONFIG": kubeconfig, "POD_NAMESPACE": namespace,
                "POD_NAME": "bench", "METRICS_PROMETHEUS_PORT": str(metrics_port),
                "METRICS_PROMETHEUS_HOST": "127.0.0.1", "KEVENTS_PROBES_PORT": str(probes_port),
                "KEVENTS_LOG_LEVEL": "WARNING",
            }  # fmt: skip
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sources.ping", env=env
            )
            try:
                await run_ticks(proc.pid, metrics_port, args, arrivals, got, started, KEVENTS)
            finally:
                await _stop(proc)
            if args.knative:
                await run_knative(api, kubeconfig, args, arrivals, got)
        finally:
            await core.delete_namespace(namespace)
            await app_runner.cleanup()
    RESULTS.save(args, short_run=args.count < 10_000)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    proc.terminate()
    try:  # mtping delays its exit past the minute's second 55 (its NoShutDownAfter)
        await asyncio.wait_for(proc.wait(), 15)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def run_knative(
    api: client.ApiClient,
    kubeconfig: str,
    args: argparse.Namespace,
    arrivals: dict[int, list[float]],
    got: asyncio.Event,
) -> None:
    """Knative's mtping over the same sources, in a system namespace of its own (its Lease
    and config maps)."""
    others = await client.CustomObjectsApi(api).list_cluster_custom_object(GROUP, VERSION, PLURAL)
    foreign = [o for o in others["items"] if not o["metadata"]["namespace"].startswith("bench-")]
    if foreign:
        print(f"note: mtping also sees {len(foreign)} PingSources of other namespaces")
    async with knative.system_namespace(api) as system:
        proc = await knative.spawn_adapter(
            "mtping", kubeconfig, system, {"NAMESPACE": system, "K_SINK_TIMEOUT": "-1"}
        )
        try:
            await run_ticks(proc.pid, None, args, arrivals, got, time.perf_counter(), KNATIVE)
        finally:
            await _stop(proc)


async def run_ticks(
    pid: int,
    metrics_port: int | None,
    args: argparse.Namespace,
    arrivals: dict[int, list[float]],
    got: asyncio.Event,
    started: float,
    system: str,
) -> None:
    """`args.ticks` minute boundaries of the adapter `pid`; with `metrics_port` (ours), once
    its metrics say every source is scheduled, else (Knative's, which has no such metric)
    from the first boundary at least 20 s away (its informer lists 10,000 sources in a few)."""
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    async with aiohttp.ClientSession() as http:
        while metrics_port is None:  # at least 10 s to list, and 20 s before the tick
            ahead = (int(time.time()) // 60 + 1) * 60 - time.time()
            if ahead > 20 and time.perf_counter() - started > 10:
                break
            await asyncio.sleep(1)
        while metrics_port is not None:
            await asyncio.sleep(0.5)
            try:
                async with http.get(metrics_url) as response:
                    text = await response.text()
            except aiohttp.ClientError:
                continue
            if f'kevents_ping_sources{{state="scheduled"}} {float(args.count)}' in text:
                break
        done = "scheduled all" if metrics_port is not None else "started; waited"
        print(f"{system}: {done} {args.count} in {time.perf_counter() - started:.1f} s; "
              f"RSS {processes.rss_mib(pid):.0f} MiB", flush=True)  # fmt: skip
        for _ in range(args.ticks):
            boundary = (int(time.time()) // 60 + 1) * 60
            await asyncio.sleep(max(0.0, boundary - 2 - time.time()))
            cpu_before = processes.cpu_seconds(pid)
            while len(arrivals.get(boundary, [])) < args.count:
                got.clear()
                try:
                    await asyncio.wait_for(got.wait(), 30)
                except TimeoutError:
                    break
            cpu = processes.cpu_seconds(pid) - cpu_before
            lateness = arrivals.pop(boundary, [])
            text = ""
            if metrics_port is not None:
                async with http.get(metrics_url) as response:
                    text = await response.text()
            if not lateness:
                print(f"{system}: tick {time.strftime('%H:%M:%S', time.gmtime(boundary))}: none")
                continue
            print(
                f"{system}: tick {time.strftime('%H:%M:%S', time.gmtime(boundary))}: "
                f"{len(lateness)}/{args.count} delivered; sink lateness "
                f"p50 {results.percentile(lateness, 0.5) * 1000:.0f} ms, "
                f"p99 {results.percentile(lateness, 0.99) * 1000:.0f} ms, "
                f"max {max(lateness) * 1000:.0f} ms; " + (
                    "adapter lateness (cumulative histogram) "
                    f"p50 <= {_histogram_quantile(text, 0.5) * 1000:.0f} ms, "
                    f"p99 <= {_histogram_quantile(text, 0.99) * 1000:.0f} ms; " if text else ""
                ) + f"CPU {cpu:.2f} s for the burst; RSS {processes.rss_mib(pid):.0f} MiB",
                flush=True,
            )  # fmt: skip
            ticks = sum(r.system == system for r in RESULTS.rows)
            RESULTS.add(
                system, f"{args.count} sources, tick {ticks + 1}",
                delivered=len(lateness), p50_ms=results.percentile(lateness, 0.5) * 1000,
                p99_ms=results.percentile(lateness, 0.99) * 1000, cpu_s=cpu,
                rss_mib=processes.rss_mib(pid),
            )  # fmt: skip


RESULTS = results.Recorder(
    "ping_source",
    "PingSource adapter: one tick of every source, lateness at the sink",
    rate=("delivered", "events delivered in the tick"),
    latency=("p99_ms", "p99 lateness at the sink (ms)"),
)


if __name__ == "__main__":
    asyncio.run(main())
