"""Benchmark the ApiServerSource adapter on the local cluster.

    hack/cluster up && .venv/bin/python -m bench.apiserver_source [--counts 1000 10000]
        [--knative] [--repeat N] [--results [DIR]]   (JSON + SVG chart, see bench/results.py)

For each count N: start `python -m sources.apiserver` (Resource mode, ConfigMaps of a fresh
namespace) against a loopback sink, create N ConfigMaps as fast as the API server takes them
(each stamped with its creation time), and print: objects changed/s, events delivered/s, the
lag from the create request to the sink (p50/p99/max), the adapter's CPU time per event and
its RSS with N objects watched. `--knative` runs Knative's own adapter
(`cmd/apiserver_receive_adapter`, hack/build-knative-peers) the same way, with the same env
contract (K_SINK, NAMESPACE, NAME, K_SOURCE_CONFIG), after ours for each count, and prints
the ratios. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import uuid

from aiohttp import web
from kubernetes_asyncio import client, config

from bench import knative, results
from hack import ports, processes
from hack.localcluster import cluster as localcluster
from kevents import cloudevent

KEVENTS, KNATIVE = "kevents ApiServerSource adapter", "Knative apiserver_receive_adapter"


async def run_one(
    api: client.ApiClient, kubeconfig: str, count: int, system: str | None = None
) -> dict[str, float]:
    """One adapter (ours, or Knative's when `system`, its system namespace, is given) over
    `count` new ConfigMaps; returns its row."""
    core = client.CoreV1Api(api)
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    lags: list[float] = []
    arrivals: list[float] = []
    done = asyncio.Event()
    watching = asyncio.Event()

    async def sink(request: web.Request) -> web.Response:
        event = cloudevent.decode(dict(request.headers), await request.read())
        now = time.time()
        watching.set()
        data = event.get_data()
        if isinstance(data, dict) and "bench" in (data.get("data") or {}):
            lags.append(now - float(data["data"]["bench"]))
            arrivals.append(now)
            if len(lags) >= count:
                done.set()
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/", sink)
    app_runner = web.AppRunner(app, access_log=None)
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", 0).start()
    port = app_runner.addresses[0][1]
    contract = {
        "K_SINK": f"http://127.0.0.1:{port}/",
        "NAMESPACE": namespace,
        "NAME": "bench",
        "K_SOURCE_CONFIG": json.dumps(
            {
                "namespaces": [namespace],
                "resources": [{"gvr": {"Group": "", "Version": "v1", "Resource": "configmaps"}}],
                "mode": "Resource",
            }
        ),
    }
    if system is not None:
        label = KNATIVE
        proc = await knative.spawn_adapter(
            "apiserver_receive_adapter", kubeconfig, system, contract
        )
    else:
        label = KEVENTS
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("K_")},
            **contract,
            "KUBECONFIG": kubeconfig,
            "METRICS_PROMETHEUS_PORT": str(ports.free_port()),
            "KEVENTS_PROBES_PORT": str(ports.free_port()),
            "KEVENTS_LOG_LEVEL": "WARNING",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sources.apiserver", env=env
        )
    try:
        # the adapter lists, then watches: change a warm-up object until an event arrives
        warmup = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="warmup"), data={"n": "0"})
        await core.create_namespaced_config_map(namespace, warmup)
        for n in range(1, 600):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watching.wait(), 0.5)
                break
            await core.patch_namespaced_config_map("warmup", namespace, {"data": {"n": str(n)}})
        else:
            raise RuntimeError(f"{label} never sent an event")
        limit = asyncio.Semaphore(32)

        async def create(i: int) -> None:
            async with limit:
                body = client.V1ConfigMap(
                    metadata=client.V1ObjectMeta(name=f"cm-{i}"), data={"bench": repr(time.time())}
                )
                await core.create_namespaced_config_map(namespace, body)

        cpu_before = processes.cpu_seconds(proc.pid)
        start = time.time()
        await asyncio.gather(*(create(i) for i in range(count)))
        created = time.time() - start
        await asyncio.wait_for(done.wait(), timeout=120 + count / 50)
        delivered = max(arrivals) - start
        cpu_us = (processes.cpu_seconds(proc.pid) - cpu_before) * 1e6 / count
        rss = processes.rss_mib(proc.pid)
        p50, p99, worst = (results.percentile(lags, 0.5), results.percentile(lags, 0.99), max(lags))
        print(
            f"{label:34} {count:>6} objects | changed {count / created:6.0f}/s | "
            f"delivered {count / delivered:6.0f} events/s | lag p50 {p50 * 1000:6.1f} ms "
            f"p99 {p99 * 1000:6.1f} ms max {worst * 1000:6.1f} ms | "
            f"mean {statistics.fmean(lags) * 1000:6.1f} ms | "
            f"CPU {cpu_us:5.0f} us/event | adapter RSS {rss:5.1f} MiB",
            flush=True,
        )
        row = {
            "events_per_s": count / delivered, "changed_per_s": count / created,
            "p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "max_ms": worst * 1000,
            "cpu_us_per_event": cpu_us, "rss_mib": rss,
        }  # fmt: skip
        RESULTS.add(label, f"{count} objects", **row)
        return row
    finally:
        proc.terminate()
        await proc.wait()
        await app_runner.cleanup()
        await core.delete_namespace(namespace)


RESULTS = results.Recorder(
    "apiserver_source",
    "ApiServerSource adapter: objects created -> events at the sink (local apiserver)",
    rate=("events_per_s", "events delivered/s"),
    latency=("p99_ms", "p99 lag create -> sink (ms)"),
)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument(
        "--knative",
        action="store_true",
        help="also run Knative's apiserver_receive_adapter (hack/build-knative-peers)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each adapter per count")
    results.add_argument(parser)
    args = parser.parse_args()
    kubeconfig = str(localcluster.state_dir() / "admin.kubeconfig")
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    async with client.ApiClient(configuration=cfg) as api:
        peer = knative.system_namespace(api) if args.knative else contextlib.nullcontext(None)
        async with peer as system:
            for count in args.counts:
                for _ in range(args.repeat):
                    ours = await run_one(api, kubeconfig, count)
                    if system is not None:
                        theirs = await run_one(api, kubeconfig, count, system)
                        print(
                            f"{'kevents / Knative':34} {count:>6} objects | "
                            + " | ".join(
                                f"{key} {ours[key] / theirs[key]:.2f}x"
                                for key in ("events_per_s", "p99_ms", "cpu_us_per_event", "rss_mib")
                            ),
                            flush=True,
                        )
    RESULTS.save(args, short_run=max(args.counts) < 1000)


if __name__ == "__main__":
    asyncio.run(main())
