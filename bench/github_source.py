"""Benchmark the GitHub receive adapter: verified webhooks/s, latency, RSS.

    .venv/bin/python -m bench.github_source [--requests 20000] [--concurrency 64]
        [--results [DIR]]   (JSON + SVG chart, see bench/results.py)

Starts `python -m sources.github` with a fast loopback sink (in this process, answering 202
at once), then an asyncio load generator POSTs real payloads from @octokit/webhooks-examples,
each signed with the adapter's secret and with a fresh X-GitHub-Delivery, over keep-alive
connections. A webhook counts when it was answered 202 (the sink accepted its event). Prints
webhooks/s, latency from request to answer (p50/p99/max), events at the sink and the adapter's
RSS. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid

import aiohttp
import uvloop
from aiohttp import web

from bench import results
from hack import octokit, ports, processes
from sources.github import signature

SECRET = "bench-webhook-secret-9e2d"
"""The adapter's GITHUB_SECRET_TOKEN; every request is signed with it."""


async def _start_sink(port: int, counter: list[int]) -> web.AppRunner:
    async def sink(request: web.Request) -> web.Response:
        await request.read()
        counter[0] += 1
        return web.Response(status=202)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/", sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _wait_ready(http: aiohttp.ClientSession, url: str) -> None:
    for _ in range(300):
        try:
            async with http.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise SystemExit("the adapter never became ready")


async def run(requests: int, concurrency: int, warmup: int) -> None:
    examples = [e for e in octokit.examples() if len(e.body) < 64 * 1024]
    signed = [(e.event, e.body, signature.sign(SECRET.encode(), e.body)) for e in examples]
    sink_port, port = ports.free_port(), ports.free_port()
    delivered = [0]
    sink = await _start_sink(sink_port, delivered)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("K_", "GITHUB_", "KEVENTS_"))}
    env.update(
        K_SINK=f"http://127.0.0.1:{sink_port}/",
        NAMESPACE="bench",
        GITHUB_SECRET_TOKEN=SECRET,
        GITHUB_OWNER_REPO="Codertocat/Hello-World",
        PORT=str(port),
        KEVENTS_PROBES_PORT=str(port),
        KEVENTS_RECEIVER_HOST="127.0.0.1",
        METRICS_PROMETHEUS_HOST="127.0.0.1",
        METRICS_PROMETHEUS_PORT=str(ports.free_port()),
        KEVENTS_LOG_LEVEL="WARNING",
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "sources.github", env=env)
    url = f"http://127.0.0.1:{port}/"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    try:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as http:
            await _wait_ready(http, url + "readiness")

            async def one(i: int, record: bool) -> None:
                event, body, sig = signed[i % len(signed)]
                headers = {
                    "Content-Type": "application/json", "X-GitHub-Event": event,
                    "X-GitHub-Delivery": str(uuid.uuid4()), signature.HEADER: sig,
                }  # fmt: skip
                start = time.perf_counter()
                async with http.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    status = resp.status
                if record:
                    latencies.append(time.perf_counter() - start)
                    statuses[status] = statuses.get(status, 0) + 1

            async def drive(total: int, record: bool) -> float:
                counter = iter(range(total))

                async def worker() -> None:
                    for i in counter:
                        await one(i, record)

                start = time.perf_counter()
                async with asyncio.TaskGroup() as group:
                    for _ in range(concurrency):
                        group.create_task(worker())
                return time.perf_counter() - start

            await drive(warmup, record=False)
            elapsed = await drive(requests, record=True)
        rss = processes.rss_mib(proc.pid)
    finally:
        proc.terminate()
        await proc.wait()
        await sink.cleanup()
    ok = statuses.get(202, 0)
    sizes = sorted(len(b) for _, b, _ in signed)
    print(
        f"{requests} webhooks ({len(signed)} real payloads, median {sizes[len(sizes) // 2]} B), "
        f"concurrency {concurrency}"
    )
    print(f"  verified and delivered: {ok / elapsed:,.0f} webhooks/s ({ok} answered 202)")
    print(
        f"  latency to answer: p50 {results.percentile(latencies, 0.5) * 1000:.2f} ms, "
        f"p99 {results.percentile(latencies, 0.99) * 1000:.2f} ms, "
        f"max {max(latencies) * 1000:.2f} ms"
    )
    print(f"  statuses: {dict(sorted(statuses.items()))}; events at the sink: {delivered[0]}")
    print(f"  adapter RSS: {rss:.1f} MiB")
    RESULTS.add(
        "kevents GitHubSource adapter", f"concurrency {concurrency}",
        webhooks_per_s=ok / elapsed, p50_ms=results.percentile(latencies, 0.5) * 1000,
        p99_ms=results.percentile(latencies, 0.99) * 1000, rss_mib=rss,
    )  # fmt: skip


RESULTS = results.Recorder(
    "github_source",
    "GitHubSource adapter: verified webhooks/s and latency to answer (loopback)",
    rate=("webhooks_per_s", "verified and delivered webhooks/s"),
    latency=("p99_ms", "p99 latency to answer (ms)"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=1_000)
    results.add_argument(parser)
    args = parser.parse_args()
    uvloop.run(run(args.requests, args.concurrency, args.warmup))
    RESULTS.save(args, short_run=args.requests < 20_000)


if __name__ == "__main__":
    main()
