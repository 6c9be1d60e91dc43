"""Benchmark Kafka clients on the local cluster's broker (part 1: the client comparison).

    .venv/bin/python -m bench.kafka [--records 50000] [--size 512] [--partitions 3]
                                    [--credentials <state>/cluster/kafka/credentials.json]

On one broker, in one run, each on a fresh topic:

- Kafka's own `ProducerPerformance` (`acks=all`, idempotent, unthrottled) and
  `ConsumerPerformance` from the broker's jars (hack/localcluster/kafka.py): the reference.
- confluent-kafka (librdkafka) through `kevents.kafka.Producer`/`Consumer`, as the KafkaSink
  ingress and the KafkaSource adapter use it: every record is an awaited `send()` that
  resolves on the `acks=all` acknowledgement (`--window` sends in flight), then a group
  consumer polls batches of 500.
- aiokafka, pure asyncio, configured alike (`acks="all"`, idempotence, `linger_ms=5`):
  `send_and_wait()` per record with the same window, `getmany(max_records=500)`.

Printed per client and direction: records/s, and CPU time per record (user + system of this
process, threads included; for the Java tools, of the child JVM, start-up included) in µs.
The uvloop event loop runs the Python clients, as in the product.

The other parts, each beside Kafka's own tools on the same broker: `bench/kafkasink.py` (the
KafkaSink ingress against the producer it is built on) and `bench/kafkasource.py` (the
KafkaSource adapter against `ConsumerPerformance` and `EndToEndLatency`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import re
import resource
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import results as recording
from hack import processes
from hack.localcluster import cluster
from hack.localcluster import kafka as localkafka
from kevents import kafka

BATCH = 500


@dataclass(frozen=True)
class Result:
    client: str
    direction: str
    records: int
    seconds: float
    cpu_seconds: float

    def line(self) -> str:
        rate = self.records / self.seconds
        cpu = self.cpu_seconds / self.records * 1e6
        return (
            f"{self.client:<22} {self.direction:<8} {rate:>10,.0f} records/s"
            f"   {cpu:>7.1f} µs CPU/record   ({self.records} in {self.seconds:.2f} s)"
        )


RECORDED = recording.Recorder(
    "kafka",
    "Kafka clients on the local broker: Kafka's own tools, confluent-kafka, aiokafka",
    rate=("records_per_s", "records/s"),
)


async def _measure(
    client: str, direction: str, records: int, work: Callable[[], Awaitable[None]]
) -> Result:
    cpu, start = processes.rusage_cpu_seconds(resource.RUSAGE_SELF), time.perf_counter()
    await work()
    seconds = time.perf_counter() - start
    return Result(
        client,
        direction,
        records,
        seconds,
        processes.rusage_cpu_seconds(resource.RUSAGE_SELF) - cpu,
    )


async def windowed(count: int, window: int, send: Callable[[int], Awaitable[object]]) -> None:
    for first in range(0, count, window):
        await asyncio.gather(*(send(i) for i in range(first, min(count, first + window))))


async def confluent(bootstrap: str, topic: str, args: argparse.Namespace) -> list[Result]:
    config = kafka.client_config(bootstrap)
    value = b"x" * args.size
    results = []
    async with kafka.Producer(config) as producer:
        await producer.send(topic, b"warm-up")

        async def produce() -> None:
            await windowed(args.records, args.window, lambda i: producer.send(topic, value))

        results.append(await _measure("confluent-kafka", "produce", args.records, produce))
    async with kafka.Consumer(config, group_id=f"{topic}-bench", topics=[topic]) as consumer:
        # the group join (seconds) is not per-record work: wait for the first batch first
        got = len(await _first_batch(consumer.poll))

        async def consume() -> None:
            nonlocal got
            while got < args.records + 1:
                got += len(await consumer.poll(BATCH, wait=1.0))

        results.append(await _measure("confluent-kafka", "consume", args.records, consume))
    return results


async def _first_batch(poll: Callable[..., Awaitable[list[kafka.Record]]]) -> list[kafka.Record]:
    while True:
        batch = await poll(1, wait=1.0)
        if batch:
            return batch


async def aiokafka(bootstrap: str, topic: str, args: argparse.Namespace) -> list[Result]:
    value = b"x" * args.size
    results = []
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm-up")

        async def produce() -> None:
            await windowed(
                args.records, args.window, lambda i: producer.send_and_wait(topic, value)
            )

        results.append(await _measure("aiokafka", "produce", args.records, produce))
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}-bench",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        got = 0
        while not got:
            got = sum(
                len(v) for v in (await consumer.getmany(timeout_ms=1000, max_records=1)).values()
            )

        async def consume() -> None:
            nonlocal got
            while got < args.records + 1:
                batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
                got += sum(len(v) for v in batches.values())

        results.append(await _measure("aiokafka", "consume", args.records, consume))
    finally:
        await consumer.stop()
    return results


def java_tool(main_class: str, *tool_args: str) -> tuple[str, float]:
    """The tool's output and the CPU seconds its JVM used."""
    before = processes.rusage_cpu_seconds(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        localkafka.java_argv(main_class, *tool_args, heap=["-Xmx512m"]),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout, processes.rusage_cpu_seconds(resource.RUSAGE_CHILDREN) - before


def kafka_tools(bootstrap: str, topic: str, args: argparse.Namespace) -> list[Result]:
    start = time.perf_counter()
    out, cpu = java_tool(
        localkafka.PRODUCER_PERFORMANCE, "--topic", topic, "--num-records", str(args.records),
        "--record-size", str(args.size), "--throughput", "-1", "--producer-props",
        f"bootstrap.servers={bootstrap}", "acks=all", "enable.idempotence=true", "linger.ms=5",
    )  # fmt: skip
    wall = time.perf_counter() - start
    # "50000 records sent, 61050.061050 records/sec (29.81 MB/sec), ..." (the last line)
    summary = [line for line in out.splitlines() if "records sent" in line][-1]
    rate = float(re.search(r"([\d.]+) records/sec", summary).group(1))  # type: ignore[union-attr]
    results = [Result("Kafka ProducerPerf.", "produce", args.records, args.records / rate, cpu)]
    print(f"  (ProducerPerformance: {summary.strip()}; JVM wall {wall:.1f} s)")
    start = time.perf_counter()
    out, cpu = java_tool(
        localkafka.CONSUMER_PERFORMANCE, "--bootstrap-server", bootstrap, "--topic", topic,
        "--messages", str(args.records), "--group", f"{topic}-bench",
    )  # fmt: skip
    wall = time.perf_counter() - start
    # header "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg,
    # nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
    lines = [line for line in out.splitlines() if line.strip()]
    header = [h.strip() for h in lines[-2].split(",")]
    values = dict(zip(header, (v.strip() for v in lines[-1].split(",")), strict=True))
    fetch_rate = float(values["fetch.nMsg.sec"])  # excludes the group join, as ours do
    results.append(
        Result("Kafka ConsumerPerf.", "consume", args.records, args.records / fetch_rate, cpu)
    )
    print(f"  (ConsumerPerformance: {values['nMsg.sec']} records/s with the group join, "
          f"{fetch_rate:,.0f} fetching; JVM wall {wall:.1f} s)")  # fmt: skip
    return results


async def main(args: argparse.Namespace, info: dict[str, str]) -> None:
    bootstrap = info["bootstrap"]
    print(f"Kafka {info['version']} at {bootstrap}: {args.records} records of {args.size} bytes, "
          f"{args.partitions} partitions, window {args.window}")  # fmt: skip
    config = kafka.client_config(bootstrap)
    results: list[Result] = []
    runs: list[tuple[str, Callable[[str], Awaitable[list[Result]]]]] = [
        ("kafka-tools", lambda t: asyncio.to_thread(kafka_tools, bootstrap, t, args)),
        ("confluent", lambda t: confluent(bootstrap, t, args)),
        ("aiokafka", lambda t: aiokafka(bootstrap, t, args)),
    ]
    for name, run in runs:
        topic = f"bench-{name}-{uuid.uuid4().hex[:8]}"
        await kafka.ensure_topic(config, topic, partitions=args.partitions)
        try:
            for result in await run(topic):
                results.append(result)
                print(result.line(), flush=True)
        finally:
            await kafka.delete_topic(config, topic)
    reference = {r.direction: r for r in results if r.client.startswith("Kafka")}
    for r in results:
        RECORDED.add(r.client, r.direction, records_per_s=r.records / r.seconds,
                     cpu_us_per_record=r.cpu_seconds / r.records * 1e6)  # fmt: skip
    RECORDED.save(args, short_run=args.records < 50_000)
    print("\nratio to Kafka's own tools (records/s):")
    for r in results:
        ref = reference[r.direction]
        print(f"  {r.client:<22} {r.direction:<8} {ref.seconds / r.seconds:6.2f}x")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=512, help="value bytes per record")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--window", type=int, default=1000, help="awaited sends in flight")
    parser.add_argument(
        "--credentials",
        default=str(localkafka.credentials_path(cluster.state_dir())),
        help="the broker's credentials.json (hack/cluster up --kafka writes it)",
    )
    recording.add_argument(parser)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    uvloop.run(main(arguments, json.loads(pathlib.Path(arguments.credentials).read_text())))
