"""Benchmark the channel dispatcher on loopback, against a naive forwarder as the baseline.

    hack/cluster up && .venv/bin/python -m bench.dispatcher [--seconds 10] [--workers 1 2]
        [--baseline] [--results [DIR]]   (JSON + SVG chart, see bench/results.py)

For each subscriber count (1 and 10) a fresh namespace gets an InMemoryChannel whose
subscribers are fast loopback servers (one process, answering 202 at once). Then `python -m
dispatcher --workers W` runs against the real API server and a load generator (its own
process: uvloop, raw HTTP/1.1 keep-alive connections, no client library overhead) POSTs
binary CloudEvents for `--seconds`, once per `--mode`: `sync` (Knative's default, 202 after
every subscriber answered) and `async` (the `async-handler` annotation). Printed per run:
accepted events/s (202s), deliveries/s at the subscribers, the added latency from the
producer's send to a subscriber's receipt (p50/p99; each event carries its send time in
CLOCK_MONOTONIC, shared by processes), 429s, the dispatcher's RSS (all its processes) and
CPU time per accepted event, of the dispatcher and of the load generator plus subscribers
(they share the cores). `--baseline` runs the same load against a naive aiohttp forwarder
(accept, POST to each subscriber, answer) for comparison.
Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import IO, Any

import aiohttp
import uvloop
from aiohttp import web
from kubernetes_asyncio import client, config

from bench import knative, results
from hack import ports, processes
from hack.localcluster import cluster as localcluster

HOST = "127.0.0.1"
BENCH = ("-m", "bench.dispatcher")
BODY = b'{"order": 12345, "items": ["a", "b", "c"], "note": "benchmark payload"}'
RESULTS = results.Recorder(
    "dispatcher",
    "InMemoryChannel dispatcher vs a naive forwarder (loopback)",
    rate=("events_per_s", "accepted events/s at maximum load"),
    latency=("p99_ms", "p99 send->subscriber latency at the offered rate (ms)"),
)


def _ms(latencies_ns: list[int], q: float) -> float:
    """The `q` quantile of latencies measured in nanoseconds, in milliseconds."""
    return results.percentile(latencies_ns, q) / 1e6


ROWS: list[dict[str, Any]] = []
"""Every phase of this run, for the ratio table."""


def _peer(label: str) -> str:
    """The Knative row a row is compared with: the same acknowledgement mode (the naive
    forwarder answers after delivery, as a synchronous channel)."""
    return "Knative IMC (async)" if "async" in label else "Knative IMC (sync)"


def _medians() -> list[dict[str, Any]]:
    """ROWS with the repetitions of one (target, subs, load) merged: the median of each
    number, `runs` how many there were and `range` the events/s of the slowest and fastest."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in ROWS:
        groups.setdefault((r["label"], r["subs"], r["load"]), []).append(r)
    merged = []
    for (label, subs, load), rows in groups.items():
        row: dict[str, Any] = {"label": label, "subs": subs, "load": load, "runs": len(rows)}
        for key in ("events_per_s", "p50_ms", "p99_ms", "cpu_us", "rss_mib", "429s"):
            row[key] = statistics.median(r[key] for r in rows)
        rates = [r["events_per_s"] for r in rows]
        row["range"] = f"{min(rates):.0f}-{max(rates):.0f}"
        merged.append(row)
    return merged


def _print_ratios(peer_of: Callable[[str], str] = _peer) -> None:
    """A markdown table of the run with ratios to Knative's IMC dispatcher in the same mode
    (x: events/s higher is better; p99, CPU/event and RSS lower is better); with repetitions,
    the medians (and the events/s range)."""
    rows = _medians()
    peers = {(r["label"], r["subs"], r["load"]): r for r in rows if r["label"].startswith("Knat")}
    if not peers:
        return
    print(
        "\n| target | subs | load | ev/s | ev/s range | p50 ms | p99 ms | CPU us/ev | RSS MiB "
        "| 429s | ev/s vs Knative | p99 vs Knative | CPU vs Knative | RSS vs Knative |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        peer = peers.get((peer_of(r["label"]), r["subs"], r["load"]))

        def ratio(key: str, row: dict[str, Any] = r, other: dict[str, Any] | None = peer) -> str:
            if other is None or not other[key]:
                return "-"
            return f"{row[key] / other[key]:.2f}x"

        print(
            f"| {r['label']} | {r['subs']} | {r['load']} | {r['events_per_s']:.0f} "
            f"| {r['range']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['cpu_us']:.0f} "
            f"| {r['rss_mib']:.0f} | {r['429s']:.0f} | {ratio('events_per_s')} "
            f"| {ratio('p99_ms')} | {ratio('cpu_us')} "
            f"| {ratio('rss_mib')} |"
        )


# -- subscribers (own process) ------------------------------------------------------------


async def _subscribers(count: int) -> None:
    latencies: list[int] = []

    async def receive(request: web.Request) -> web.Response:
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

    app = web.Application()
    app.router.add_post("/", receive)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ports = []
    for _ in range(count):
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        ports.append(runner.addresses[-1][1])
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


# -- load generator (own process) ----------------------------------------------------------


async def _load(port: int, path: str, connections: int, seconds: float, rate: float) -> None:
    """Closed loop over `connections` keep-alive connections; with `rate` > 0 each connection
    paces itself to rate/connections sends per second (an open-loop offered load)."""
    codes: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    interval = connections / rate if rate > 0 else 0.0

    async def connection(number: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"ce-specversion: 1.0\r\nce-type: dev.bench.order\r\nce-source: /bench\r\n"
            f"Content-Length: {len(BODY)}\r\n"
        ).encode()
        sequence = 0
        next_send = time.monotonic() + interval * number / connections
        while time.monotonic() < deadline:
            if interval:
                delay = next_send - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_send += interval
            sequence += 1
            extra = f"ce-id: {number}-{sequence}\r\nce-benchsent: {time.monotonic_ns()}\r\n\r\n"
            writer.write(head + extra.encode() + BODY)
            status_line = await reader.readuntil(b"\r\n")
            headers = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in headers.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            code = int(status_line.split()[1])
            codes[code] = codes.get(code, 0) + 1
            if code == 429:
                await asyncio.sleep(0.001)
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection(i) for i in range(connections)))
    elapsed = time.monotonic() - started
    result = {"codes": codes, "elapsed": elapsed, "cpu": time.process_time()}
    sys.stdout.write(json.dumps(result) + "\n")


# -- naive forwarder (baseline, own process) ------------------------------------------------


async def _naive(port: int, targets: list[str]) -> None:
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("ce-")}
        headers["Content-Type"] = request.headers.get("Content-Type", "application/json")

        async def one(url: str) -> None:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()

        await asyncio.gather(*(one(u) for u in targets))
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, port).start()
    await asyncio.Event().wait()


# -- orchestration ---------------------------------------------------------------------------


PINS: dict[str, str] = {}
"""`--pin-target`/`--pin-load`: CPU lists (taskset -c) for the target and for the load
generator with the subscribers, so they do not share cores."""
PINS_ASKED: dict[str, str] = {}
"""The pins as given (PINS is cleared while a target has more workers than pinned CPUs)."""


async def _spawn(
    *args: str, env: dict[str, str] | None = None, pin: str = "", stderr: IO[bytes] | None = None
) -> asyncio.subprocess.Process:
    """`stderr`: where the process's log goes (by default nowhere)."""
    cpus = PINS.get(pin, "")
    return await asyncio.create_subprocess_exec(
        *(("taskset", "-c", cpus) if cpus else ()),
        sys.executable,
        *args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr if stderr is not None else subprocess.DEVNULL,
    )


async def _until_accepting(session: aiohttp.ClientSession, url: str) -> None:
    ok = 0
    headers = {"ce-specversion": "1.0", "ce-id": "w", "ce-type": "t", "ce-source": "/s"}
    for _ in range(600):
        try:
            async with aiohttp.ClientSession() as fresh, fresh.post(url, headers=headers) as r:
                ok = ok + 1 if r.status == 202 else 0
        except aiohttp.ClientError:
            ok = 0
        if ok >= 20:  # twenty new connections in a row: every worker serves the channel
            return
        await asyncio.sleep(0.05)
    raise NeverReady(f"{url} never accepted events")


class NeverReady(RuntimeError):
    """A target that did not serve the channel in time: its rows are left out of the run."""


async def _phase(
    session: aiohttp.ClientSession,
    args: argparse.Namespace,
    label: str,
    subs: int,
    port: int,
    path: str,
    stats_port: int,
    pid: int | list[int],
    sub_pid: int,
    rate: float,
    recorder: results.Recorder | None = None,
    system: str | None = None,
    case: str | None = None,
) -> None:
    """One load run: unlimited (rate 0: maximum throughput) or at an offered rate; its row
    goes to `recorder` (this bench's by default) as `system` in `case`."""
    stats_url = f"http://{HOST}:{stats_port}/stats"
    await asyncio.sleep(0.5)
    async with session.post(f"http://{HOST}:{stats_port}/reset"):
        pass
    pids = pid if isinstance(pid, list) else [pid]
    cpu_before = sum(processes.cpu_seconds(each, children=True) for each in pids)
    sub_cpu_before = processes.cpu_seconds(sub_pid, children=True)
    load = await _spawn(
        *BENCH, "--load", str(port), path, str(args.connections), str(args.seconds), str(rate),
        pin="load",
    )  # fmt: skip
    out, _ = await load.communicate()
    result = json.loads(out)
    rss = sum(processes.rss_mib(each, children=True) for each in pids)
    cpu = sum(processes.cpu_seconds(each, children=True) for each in pids) - cpu_before
    others = processes.cpu_seconds(sub_pid, children=True) - sub_cpu_before + result["cpu"]
    previous = -1
    stats: dict[str, list[int] | int] = {}
    while True:  # wait for the deliveries still in flight
        async with session.get(stats_url) as r:
            stats = await r.json()
        if stats["count"] == previous:
            break
        previous = int(stats["count"])  # type: ignore[arg-type]
        await asyncio.sleep(0.3)
    accepted = result["codes"].get("202", 0)
    latencies = stats["latencies"]
    assert isinstance(latencies, list)
    load_label = "max" if rate == 0 else f"{rate:.0f}/s"
    print(
        f"{label:22} subs={subs:2} load={load_label:7} accepted {accepted / result['elapsed']:6.0f}"
        f" ev/s  deliveries {len(latencies) / result['elapsed']:6.0f}/s"
        f"  latency p50 {_ms(latencies, 0.5):7.2f} ms"
        f" p99 {_ms(latencies, 0.99):7.2f} ms"
        f"  429s {result['codes'].get('429', 0):5}  RSS {rss:4.0f} MiB"
        f"  CPU {cpu * 1e6 / max(1, accepted):4.0f} us/ev"
        f" (load+subscribers {others * 1e6 / max(1, accepted):4.0f})",
        flush=True,
    )
    ROWS.append(
        {
            "label": label,
            "subs": subs,
            "load": load_label,
            "events_per_s": accepted / result["elapsed"],
            "p50_ms": _ms(latencies, 0.5),
            "p99_ms": _ms(latencies, 0.99),
            "cpu_us": cpu * 1e6 / max(1, accepted),
            "rss_mib": rss,
            "429s": result["codes"].get("429", 0),
        }
    )
    recorder = recorder or RESULTS
    if system is None:
        theirs = label.startswith(("naive", "Knative"))
        system = label if theirs else "kevents " + label.removeprefix("dispatcher ")
    case = case or f"{subs} subscriber{'s' * (subs > 1)}"
    numbers = {
        "deliveries_per_s": len(latencies) / result["elapsed"],
        "p50_ms": _ms(latencies, 0.5),
        "rss_mib": rss,
        "cpu_us_per_event": cpu * 1e6 / max(1, accepted),
    }
    if rate == 0:  # the throughput phase
        recorder.add(system, case, events_per_s=accepted / result["elapsed"], **numbers)
    else:  # the latency phase at an offered rate
        recorder.add(system, case, p99_ms=_ms(latencies, 0.99), offered_per_s=rate, **numbers)


async def run_one(
    api: client.ApiClient,
    kubeconfig: str,
    args: argparse.Namespace,
    subs: int,
    workers: int,
    mode: str = "sync",
    knative_system: str | None = None,
) -> None:
    """One target: the naive forwarder (workers 0), Knative's IMC dispatcher
    (`knative_system` given) or ours with `workers` processes, in `mode`."""
    pinned = dict(PINS)
    if workers > _cpus(PINS.get("target", "")):
        PINS.clear()  # more workers than pinned cores: the target and the load share them all
    try:
        await _run_one(api, kubeconfig, args, subs, workers, mode, knative_system)
    except NeverReady as exc:  # a loaded machine: keep the rest of the run
        print(f"left out: {exc}", flush=True)
    finally:
        PINS.update(pinned)


def _cpus(cpu_list: str) -> int:
    """How many CPUs a taskset list names ("1", "0,2", "2-5"); unpinned: every CPU."""
    if not cpu_list:
        return os.cpu_count() or 1
    count = 0
    for part in cpu_list.split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


async def _run_one(
    api: client.ApiClient,
    kubeconfig: str,
    args: argparse.Namespace,
    subs: int,
    workers: int,
    mode: str,
    knative_system: str | None,
) -> None:
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    sub_proc = await _spawn(*BENCH, "--serve-subscribers", str(subs), pin="load")
    # worker i of our dispatcher serves its metrics on metrics_port + i: none of those may
    # be another of its ports (a collision made the 2-worker target exit in earlier runs)
    port, broker_port, probes_port, metrics_port = ports.free_ports(1, 1, 1, max(1, workers))
    target: asyncio.subprocess.Process | None = None
    log = tempfile.TemporaryFile()  # our dispatcher's log, shown when it never serves
    try:
        assert sub_proc.stdout is not None
        sub_ports = json.loads(await sub_proc.stdout.readline())
        urls = [f"http://{HOST}:{p}/" for p in sub_ports]
        if workers == 0:
            label, path = "naive forwarder", "/"
            target = await _spawn(*BENCH, "--naive", str(port), *urls, pin="target")
        else:
            path = f"/{namespace}/bench"
            annotations = {"messaging.knative.dev/async-handler": "true"} if "async" in mode else {}
            if knative_system is not None:
                label = f"Knative IMC ({mode})"
                annotations.update(knative.SCOPE_ANNOTATION)
            else:
                label = f"dispatcher --workers {workers} ({mode})"
                if PINS_ASKED.get("target") and not PINS.get("target"):
                    label = f"dispatcher --workers {workers} ({mode}, unpinned)"
            body = {
                "apiVersion": "messaging.knative.dev/v1",
                "kind": "InMemoryChannel",
                "metadata": {"name": "bench", "annotations": annotations},
                "spec": {
                    "subscribers": [
                        {"uid": f"u{i}", "generation": 1, "subscriberUri": u}
                        for i, u in enumerate(urls)
                    ]
                },
            }
            custom = client.CustomObjectsApi(api)
            await custom.create_namespaced_custom_object(
                "messaging.knative.dev", "v1", namespace, "inmemorychannels", body
            )
            if knative_system is not None:
                await custom.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
                    "messaging.knative.dev", "v1", namespace, "inmemorychannels", "bench",
                    knative.ready_status(namespace, "bench"),
                    _content_type="application/merge-patch+json",
                )  # fmt: skip
                port = knative.IMC_DISPATCHER_PORTS[0]
                target = await knative.spawn_imc_dispatcher(
                    kubeconfig, knative_system, namespace, PINS.get("target", "")
                )
        if target is None:
            env = {
                **os.environ,
                "KUBECONFIG": kubeconfig,
                "KEVENTS_INGRESS_HOST": HOST,
                "KEVENTS_INGRESS_PORT": str(port),
                # its broker ingress too: the default 8001 is taken by any other dispatcher
                # on this host (a developer's, an earlier run's still stopping)
                "KEVENTS_BROKER_INGRESS_PORT": str(broker_port),
                "KEVENTS_PROBES_HOST": HOST,
                "KEVENTS_PROBES_PORT": str(probes_port),
                "METRICS_PROMETHEUS_HOST": HOST,
                "METRICS_PROMETHEUS_PORT": str(metrics_port),
                "KEVENTS_LOG_LEVEL": "WARNING",
                "KEVENTS_REPORT_STATUS": "false",
            }
            if mode == "async-unbounded":  # admission by the count bounds only
                env["KEVENTS_SOJOURN_TARGET"] = "0"
            target = await _spawn(
                "-m", "dispatcher", "--workers", str(workers), env=env, pin="target",
                stderr=log,
            )  # fmt: skip
        async with aiohttp.ClientSession() as session:
            try:
                await _until_accepting(session, f"http://{HOST}:{port}{path}")
            except NeverReady as exc:  # say why: the target's exit code and last log lines
                log.seek(0)
                tail = b"".join(log.readlines()[-5:]).decode("utf-8", "replace")
                raise NeverReady(f"{exc} (exit code {target.returncode}):\n{tail}") from None
            for rate in (0.0, args.rate):
                await _phase(
                    session, args, label, subs, port, path, sub_ports[0], target.pid,
                    sub_proc.pid, rate,
                )  # fmt: skip
    finally:
        for proc in (target, sub_proc):
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):  # it may have just exited
                    proc.terminate()
                await proc.wait()
        await core.delete_namespace(namespace)
        log.close()


async def main(args: argparse.Namespace) -> None:
    kubeconfig = str(localcluster.state_dir() / "admin.kubeconfig")
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    print(
        f"{os.cpu_count()} CPUs, {args.connections} connections, {args.seconds:.0f} s per run, "
        "subscribers answer 202 at once (latency: producer send -> subscriber receipt)"
    )
    async with client.ApiClient(configuration=cfg) as api:
        knative_system = (
            knative.system_namespace(api) if args.knative else contextlib.nullcontext(None)
        )
        async with knative_system as system:
            for _ in range(args.repeat):
                for subs in args.subscribers:
                    if args.baseline:
                        await run_one(api, kubeconfig, args, subs, 0)
                    if system is not None:
                        for mode in args.knative:
                            await run_one(api, kubeconfig, args, subs, 1, mode, system)
                    for workers in args.workers:
                        for mode in args.mode:
                            await run_one(api, kubeconfig, args, subs, workers, mode)
    RESULTS.save(args)
    _print_ratios()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--baseline", action="store_true", help="also run a naive forwarder")
    parser.add_argument(
        "--mode",
        nargs="+",
        choices=("sync", "async", "async-unbounded"),
        default=["sync", "async"],
        help="channel acknowledgement: sync (Knative's default: 202 after delivery) and/or "
        "async (messaging.knative.dev/async-handler: true; async-unbounded: without the "
        "sojourn bound, KEVENTS_SOJOURN_TARGET=0)",
    )
    parser.add_argument(
        "--knative",
        nargs="*",
        choices=("sync", "async"),
        help="also run Knative's IMC dispatcher (hack/build-knative-peers) in these modes "
        "(both when none given)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of the whole set (the table: medians)"
    )
    parser.add_argument(
        "--pin-target",
        default="",
        metavar="CPUS",
        help="taskset -c CPUS (a target with more workers than CPUS runs unpinned, as the load)",
    )
    parser.add_argument("--pin-load", default="", metavar="CPUS", help="taskset -c CPUS")
    parser.add_argument("--serve-subscribers", type=int, metavar="COUNT")
    parser.add_argument(
        "--load", nargs=5, metavar=("PORT", "PATH", "CONNECTIONS", "SECONDS", "RATE")
    )
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="offered events/s of the latency phase"
    )
    parser.add_argument("--naive", nargs="+", metavar="PORT_THEN_URLS")
    results.add_argument(parser)
    parsed = parser.parse_args()
    PINS.update(target=parsed.pin_target, load=parsed.pin_load)
    PINS_ASKED.update(PINS)
    if parsed.knative == []:
        parsed.knative = ["sync", "async"]
    return parsed


if __name__ == "__main__":
    arguments = _arguments()
    if arguments.serve_subscribers:
        uvloop.run(_subscribers(arguments.serve_subscribers))
    elif arguments.load:
        port, path, connections, seconds, rate = arguments.load
        uvloop.run(_load(int(port), path, int(connections), float(seconds), float(rate)))
    elif arguments.naive:
        uvloop.run(_naive(int(arguments.naive[0]), arguments.naive[1:]))
    else:
        uvloop.run(main(arguments))
