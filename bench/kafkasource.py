"""Benchmark the KafkaSource adapter against Kafka's own consumer tools, on the local broker.

    hack/cluster up --kafka && .venv/bin/python -m bench.kafkasource [--records 50000]
        [--size 512] [--partitions 3] [--ordering ordered unordered] [--rate 200]
        [--seconds 10] [--results [DIR]]

One broker, one run:

1. **Backlog.** `--records` plain records of `--size` bytes are produced (`acks=all`) into a
   fresh topic of `--partitions` partitions before anything reads them. Kafka's
   `ConsumerPerformance` reads them in its own group: records/s while fetching (its
   `fetch.nMsg.sec`, the group join excluded). Then, per `--ordering`, the adapter
   (`python -m sources.kafka`, started here with the env contract its Deployment gets, its
   own consumer group, `earliest`) reads the same topic and delivers every record as a
   CloudEvent to a loopback sink in this process that answers 202 at once: events/s from the
   first to the last event at the sink (the group join excluded, as for the tool), the
   adapter's CPU time per event and its RSS.
2. **Live.** With the adapter still running, records are produced at `--rate` for
   `--seconds`; latency = the record's timestamp (the event's `time`: set by the producing
   client, millisecond resolution) -> the sink's receipt, p50/p99. The reference is Kafka's
   `EndToEndLatency` on the same broker (produce one record with `acks=all`, consume it,
   then the next).

Printed: one line per measurement and the ratio of each adapter row to Kafka's tool. Kafka's
side is a JVM consumer handing records to nobody; the adapter's events each cross an HTTP
request to a sink on the same two cores, so the ratio is the cost of a delivered event.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import pathlib
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import uvloop
from aiohttp import web

from bench import kafka as kafkabench
from bench import kafkasink, results
from hack import ports, processes
from hack.localcluster import cluster
from hack.localcluster import kafka as localkafka
from kevents import kafka

HOST = "127.0.0.1"
END_TO_END_LATENCY = "org.apache.kafka.tools.EndToEndLatency"
TOOLS = "Kafka ConsumerPerf. / EndToEndLatency"
"""Kafka's tools as one system of the chart: ConsumerPerformance's rate, EndToEndLatency's p99
(drawn grey as the reference, bench/plots.py)."""

RESULTS = results.Recorder(
    "kafkasource",
    "KafkaSource adapter vs Kafka's own consumer tools (local Kafka, loopback sink)",
    rate=("events_per_s", "events/s delivered (backlog)"),
    latency=("p99_ms", "p99 record timestamp -> sink (ms, live)"),
)


class Sink:
    """The loopback sink: counts events and, for the live phase, their latency (ms)."""

    def __init__(self) -> None:
        self.count = self.target = 0
        self.first = self.last = 0.0
        self.latencies: list[float] = []
        self.began = asyncio.Event()
        self.reached = asyncio.Event()

    def expect(self, target: int) -> None:
        self.count, self.target, self.latencies = 0, target, []
        self.began, self.reached = asyncio.Event(), asyncio.Event()

    async def receive(self, request: web.BaseRequest) -> web.Response:
        await request.read()
        now = time.time()
        if self.count == 0:
            self.first = now
            self.began.set()
        self.count += 1
        self.last = now
        stamp = request.headers.get("ce-time")
        if stamp is not None:
            self.latencies.append((now - datetime.datetime.fromisoformat(stamp).timestamp()) * 1e3)
        if self.count >= self.target:
            self.reached.set()
        return web.Response(status=202)


async def _produce(config: dict[str, Any], topic: str, count: int, size: int) -> None:
    async with kafka.Producer(config) as producer:
        value = b"x" * size
        await kafkabench.windowed(count, 1000, lambda i: producer.send(topic, value))


async def _produce_at(
    config: dict[str, Any], topic: str, rate: float, seconds: float, size: int
) -> int:
    """Records at `rate`/s for `seconds` (sent on a 10 ms schedule); answers how many."""
    count, value, tick = int(rate * seconds), b"x" * size, 0.01
    async with kafka.Producer(config) as producer, asyncio.TaskGroup() as sends:
        start = time.perf_counter()
        for i in range(count):
            due = start + i / rate
            if due - time.perf_counter() > tick:
                await asyncio.sleep(due - time.perf_counter())
            sends.create_task(producer.send(topic, value))
    return count


def consumer_performance(bootstrap: str, topic: str, records: int) -> float:
    """Kafka's ConsumerPerformance on `topic`: records/s while fetching."""
    out, _ = kafkabench.java_tool(
        localkafka.CONSUMER_PERFORMANCE, "--bootstrap-server", bootstrap, "--topic", topic,
        "--messages", str(records), "--group", f"{topic}-perf",
    )  # fmt: skip
    lines = [line for line in out.splitlines() if line.strip()]
    header = [h.strip() for h in lines[-2].split(",")]
    values = dict(zip(header, (v.strip() for v in lines[-1].split(",")), strict=True))
    print(f"  (ConsumerPerformance: {float(values['nMsg.sec']):,.0f} records/s with the group "
          f"join, {float(values['fetch.nMsg.sec']):,.0f} fetching)")  # fmt: skip
    return float(values["fetch.nMsg.sec"])


def end_to_end_latency(bootstrap: str, topic: str, records: int, size: int) -> tuple[float, float]:
    """Kafka's EndToEndLatency (one record at a time, acks=all): (p50, p99) in ms."""
    out, _ = kafkabench.java_tool(
        END_TO_END_LATENCY, bootstrap, topic, str(records), "all", str(size)
    )
    # "Percentiles: 50th = 1, 99th = 3, 99.9th = 5" (whole milliseconds)
    found = re.search(r"50th = (\d+), 99th = (\d+)", out)
    if found is None:
        raise RuntimeError(f"EndToEndLatency printed no percentiles: {out[-500:]}")
    average = re.search(r"Avg latency: ([\d.]+)", out)
    print(f"  (EndToEndLatency: average {average.group(1) if average else '?'} ms)")
    return float(found.group(1)), float(found.group(2))


async def adapter(
    sink_port: int, bootstrap: str, topic: str, ordering: str
) -> asyncio.subprocess.Process:
    """`python -m sources.kafka` with the env contract of its Deployment."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("K_", "KAFKA_"))},
        "K_SINK": f"http://{HOST}:{sink_port}/", "NAMESPACE": "bench", "NAME": "bench",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_TOPICS": topic,
        "KAFKA_CONSUMER_GROUP": f"{topic}-{ordering}", "KAFKA_INITIAL_OFFSET": "earliest",
        "KAFKA_ORDERING": ordering, "KEVENTS_LOG_LEVEL": "WARNING",
        "METRICS_PROMETHEUS_HOST": HOST, "METRICS_PROMETHEUS_PORT": str(ports.free_port(HOST)),
        "KEVENTS_PROBES_PORT": str(ports.free_port(HOST)),
    }  # fmt: skip
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sources.kafka", env=env, cwd=kafkasink.REPO
    )


async def main(args: argparse.Namespace, info: dict[str, str]) -> None:
    bootstrap = info["bootstrap"]
    config = kafka.client_config(bootstrap)
    print(f"Kafka {info.get('version', '?')} at {bootstrap}: {args.records} records of "
          f"{args.size} bytes, {args.partitions} partitions; live {args.rate:g}/s for "
          f"{args.seconds:g} s")  # fmt: skip
    sink = Sink()
    server = web.Server(sink.receive, access_log=None)
    site_runner = web.ServerRunner(server)
    await site_runner.setup()
    await web.TCPSite(site_runner, HOST, 0).start()
    sink_port = site_runner.addresses[0][1]
    topic = f"bench-kafkasource-{uuid.uuid4().hex[:8]}"
    latency_topic = f"{topic}-e2e"
    await kafka.ensure_topic(config, topic, partitions=args.partitions)
    await kafka.ensure_topic(config, latency_topic, partitions=1)
    rows: list[tuple[str, str, float, Callable[[float], str]]] = []
    in_topic = args.records  # each adapter's group reads the topic from the start
    live = f"live, {args.rate:,.0f} records/s"
    try:
        await _produce(config, topic, args.records, args.size)
        tool_rate = await asyncio.to_thread(consumer_performance, bootstrap, topic, args.records)
        print(f"{'Kafka ConsumerPerformance':<34} backlog {tool_rate:>10,.0f} records/s",
              flush=True)  # fmt: skip
        RESULTS.add(TOOLS, "backlog", events_per_s=tool_rate)
        p50, p99 = await asyncio.to_thread(
            end_to_end_latency, bootstrap, latency_topic, max(100, int(args.rate)), args.size
        )
        print(f"{'Kafka EndToEndLatency':<34} live    p50 {p50:6.1f} ms   p99 {p99:6.1f} ms",
              flush=True)  # fmt: skip
        RESULTS.add(TOOLS, live, p50_ms=p50, p99_ms=p99)
        rows += [("Kafka ConsumerPerformance", "events/s", tool_rate, lambda v: "1x"),
                 ("Kafka EndToEndLatency", "p99 ms", p99, lambda v: "1x")]  # fmt: skip
        for ordering in args.ordering:
            label = f"kevents KafkaSource ({ordering})"
            sink.expect(in_topic)
            proc = await adapter(sink_port, bootstrap, topic, ordering)
            try:
                await asyncio.wait_for(sink.began.wait(), timeout=60)
                # start-up and group join excluded
                cpu_before, sink_before = (
                    processes.cpu_seconds(proc.pid),
                    processes.rusage_cpu_seconds(),
                )
                await asyncio.wait_for(sink.reached.wait(), timeout=60 + in_topic / 200)
                rate = (in_topic - 1) / (sink.last - sink.first)
                cpu = (processes.cpu_seconds(proc.pid) - cpu_before) / (in_topic - 1) * 1e6
                sink_cpu = (processes.rusage_cpu_seconds() - sink_before) / (in_topic - 1) * 1e6
                rss = processes.rss_mib(proc.pid)
                print(f"{label:<34} backlog {rate:>10,.0f} events/s   {cpu:5.0f} µs CPU/event "
                      f"(sink {sink_cpu:.0f})   RSS {rss:.0f} MiB   ({in_topic} records; "
                      f"load average {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
                sink.expect(int(args.rate * args.seconds))
                sent = await _produce_at(config, topic, args.rate, args.seconds, args.size)
                in_topic += sent
                await asyncio.wait_for(sink.reached.wait(), timeout=60)
                lp50, lp99 = (
                    results.percentile(sink.latencies, 0.5),
                    results.percentile(sink.latencies, 0.99),
                )
                print(f"{label:<34} live    p50 {lp50:6.1f} ms   p99 {lp99:6.1f} ms "
                      f"({sent} records at {args.rate:g}/s)", flush=True)  # fmt: skip
            finally:
                proc.terminate()
                await proc.wait()
            RESULTS.add(label, "backlog", events_per_s=rate, cpu_us_per_event=cpu,
                        sink_cpu_us_per_event=sink_cpu, rss_mib=rss)  # fmt: skip
            RESULTS.add(label, live, p50_ms=lp50, p99_ms=lp99)
            rows += [(label, "events/s", rate, lambda v: f"{v / tool_rate:.2f}x"),
                     (label, "p99 ms", lp99, lambda v: f"{v / p99:.2f}x")]  # fmt: skip
    finally:
        await site_runner.cleanup()
        for name in (topic, latency_topic):
            await kafka.delete_topic(config, name)
    print("\nratio to Kafka's own tool (events/s: higher is better; p99: lower is better):")
    for label, what, value, ratio in rows:
        print(f"  {label:<34} {what:<9} {value:>10,.1f}   {ratio(value)}")
    RESULTS.save(args, short_run=args.records < 50_000 or args.seconds < results.SHORT_RUN_SECONDS)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="backlog records")
    parser.add_argument("--size", type=int, default=512, help="value bytes per record")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--ordering", nargs="+", default=["ordered", "unordered"],
                        choices=["ordered", "unordered"])  # fmt: skip
    parser.add_argument(
        "--rate", type=float, default=200,
        help="live records/s (200: below the adapter's rate on a loaded machine, so the p99 is "
        "latency, not a growing backlog)",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0, help="live phase length")
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
