"""`python -m dispatcher` against hostile subscribers and crashes (issue 17 points 1, 3, 8).

Each test runs the dispatcher as a real process on the real API server, with loopback
subscribers: one that never reads or answers, one that never answers, healthy ones; and a
producer that counts every 202 it got. What a user would notice is asserted: the process
stays under its Deployment's memory limit, a hanging subscriber does not cut its channel off,
and `kill -9` loses no event the producer was told was accepted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import pathlib
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from kubernetes_asyncio import client

from kevents import cloudevent
from tests import cluster, waiting
from tests.integration import dispatcher_harness as h

pytestmark = pytest.mark.cluster

MiB = 1024 * 1024
MANIFEST = pathlib.Path(__file__).resolve().parents[2] / "manifests" / "500-dispatcher.yaml"


def _memory_limit() -> int:
    """The dispatcher Deployment's memory limit in bytes (`manifests/500-dispatcher.yaml`)."""
    for doc in yaml.safe_load_all(MANIFEST.read_text()):
        if doc and doc.get("kind") == "Deployment":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            limit = str(container["resources"]["limits"]["memory"])
            assert limit.endswith("Mi"), limit
            return int(limit[:-2]) * MiB
    raise AssertionError("no Deployment in " + str(MANIFEST))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    def __init__(self, proc: asyncio.subprocess.Process, env: dict[str, str]) -> None:
        self.proc = proc
        self.env = env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['KEVENTS_INGRESS_PORT']}"

    def peak_rss(self) -> int:
        """Bytes: the most resident memory the process has had (VmHWM)."""
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    async def metric(self, name: str, **labels: str) -> float:
        port = self.env["METRICS_PROMETHEUS_PORT"]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            text = await response.text()
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}")
        for line in text.splitlines():
            if line.startswith(wanted + " ") or (not labels and line.startswith(name + " ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@contextlib.asynccontextmanager
async def dispatcher_process(kube: cluster.Kube, **values: str) -> AsyncIterator[Process]:
    """`python -m dispatcher` with Deployment defaults, on loopback ports; killed after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("K_", "KUBERNETES_"))}
    env.update(
        KUBECONFIG=str(kube.kubeconfig),
        KEVENTS_INGRESS_HOST="127.0.0.1",
        KEVENTS_PROBES_HOST="127.0.0.1",
        METRICS_PROMETHEUS_HOST="127.0.0.1",
        KEVENTS_INGRESS_PORT=str(_free_port()),
        KEVENTS_BROKER_INGRESS_PORT=str(_free_port()),
        KEVENTS_PROBES_PORT=str(_free_port()),
        METRICS_PROMETHEUS_PORT=str(_free_port()),
        KEVENTS_LOG_FORMAT="text",
        KEVENTS_REPORT_STATUS="false",
        KEVENTS_GRACE="1",
    )
    env.update(values)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dispatcher", env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield Process(proc, env)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def served(process: Process, namespace: str, name: str) -> None:
    """Wait until the process serves the channel: a sentinel event gets a 202."""

    async def accepted() -> bool:
        with contextlib.suppress(aiohttp.ClientError):
            status, _, _ = await h.post(f"{process.url}/{namespace}/{name}", h.event("sentinel"))
            return status == 202
        return False

    for _ in range(600):
        if process.proc.returncode is not None:
            raise AssertionError("the dispatcher exited")
        if await accepted():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"channel {namespace}/{name} never served")


@contextlib.asynccontextmanager
async def never_reading() -> AsyncIterator[str]:
    """A subscriber that accepts connections and never reads or answers: every byte sent to
    it stays in the sender's buffers (the worst case for the dispatcher's memory)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def _binary(id: str, body: bytes = b'{"n": 1}') -> tuple[dict[str, str], bytes]:
    """A binary-mode event without `time` (the producer sets none)."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": id,
        "ce-source": "/tests/hostile",
        "ce-type": "dev.example.hostile",
        "content-type": "application/json",
    }
    return headers, body


async def test_memory_stays_under_the_deployment_limit_with_a_hanging_subscriber(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    """Issue 17 point 1: 200 events of 4 MiB to a subscriber that never reads: the process
    stays under the Deployment's memory limit (peak RSS), the events beyond the queue's
    byte bound get 429, and every one is answered."""
    h.ensure_crd(kube)
    limit = _memory_limit()
    async with never_reading() as hanging:
        entry = {"uid": "u1", "generation": 1, "subscriberUri": hanging}
        await h.create_channel(api_client, namespace, "big", [entry], annotations=h.ASYNC)
        async with dispatcher_process(kube) as process:
            await served(process, namespace, "big")
            body = b'{"pad": "' + b"x" * (4 * MiB - 11) + b'"}'
            assert len(body) == 4 * MiB
            statuses: list[int] = []
            queue = list(range(200))

            async def produce(session: aiohttp.ClientSession) -> None:
                while queue:
                    i = queue.pop()
                    headers, data = _binary(f"big-{i}", body)
                    async with session.post(
                        f"{process.url}/{namespace}/big", data=io.BytesIO(data), headers=headers
                    ) as response:
                        statuses.append(response.status)

            async with aiohttp.ClientSession() as session:
                await asyncio.gather(*(produce(session) for _ in range(8)))
            peak = process.peak_rss()
            queue_bytes = await process.metric("kevents_dispatcher_queue_bytes")
    accepted = statuses.count(202)
    assert len(statuses) == 200
    assert statuses.count(429) == 200 - accepted, sorted(set(statuses))
    assert 0 < accepted < 200
    assert queue_bytes >= accepted * 4 * MiB  # all still held for the hanging subscriber
    assert peak < limit, (
        f"peak RSS {peak / MiB:.0f} MiB >= limit {limit / MiB:.0f} MiB "
        f"({accepted} accepted, {queue_bytes / MiB:.0f} MiB queued)"
    )


async def test_a_hanging_subscriber_does_not_cut_off_the_healthy_one(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    """Issue 17 point 3: on one channel, a subscriber that never answers and a healthy one.
    The healthy one receives every event; the hanging one's events time out and are
    dead-lettered (with Knative's error extensions, the producer's attributes untouched) or,
    when its lane is full, skipped and counted."""
    h.ensure_crd(kube)
    healthy, dls = h.Subscriber(), h.Subscriber()
    async with never_reading() as hanging, h.serving(healthy, dls):
        delivery: dict[str, Any] = {"timeout": "PT0.5S", "deadLetterSink": {"uri": dls.url}}
        await h.create_channel(
            api_client,
            namespace,
            "mixed",
            [
                {"uid": "hang", "generation": 1, "subscriberUri": hanging, "delivery": delivery},
                h.subscriber_entry("ok", healthy),
            ],
            annotations=h.ASYNC,
        )
        async with dispatcher_process(
            kube, KEVENTS_SUBSCRIBER_CONCURRENCY="2", KEVENTS_SUBSCRIBER_BACKLOG="3"
        ) as process:
            await served(process, namespace, "mixed")
            await waiting.until(lambda: "sentinel" in healthy.ids())
            ids = [f"m{i}" for i in range(60)]
            async with aiohttp.ClientSession() as session:
                for id in ids:
                    headers, data = _binary(id)
                    async with session.post(
                        f"{process.url}/{namespace}/mixed", data=data, headers=headers
                    ) as response:
                        assert response.status == 202
            await waiting.until(lambda: set(ids) <= set(healthy.ids()), within=30)

            async def settled() -> bool:
                skipped = await process.metric("kevents_events_lost_total", reason="backlog_full")
                dead = {e.get_id() for e in dls.events}
                return len(dead & set(ids)) + skipped == len(ids)

            for _ in range(300):
                if await settled():
                    break
                await asyncio.sleep(0.1)
            assert await settled()
    assert sorted(i for i in healthy.ids() if i != "sentinel") == sorted(ids)
    skipped = len(ids) - len({e.get_id() for e in dls.events} & set(ids))
    assert skipped > 0, "the hanging subscriber's lane never filled: the test proves nothing"
    dead = next(e for e in dls.events if e.get_id() in ids)
    attributes = dead.get_attributes()
    assert "time" not in attributes  # the producer set none
    assert attributes["knativeerrordest"] == hanging
    assert attributes["knativeerrorcode"] == "500"
    assert base64.standard_b64decode(attributes["knativeerrordata"]) == (
        b"dispatch error: no response within 0.5 s"
    )


async def test_kill_9_loses_no_acknowledged_event_in_synchronous_mode(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    """Issue 17 point 8: a channel without Knative's async-handler annotation answers 202
    only once its subscriber has the event, so `kill -9` under load costs the producer
    retries, never an acknowledged event."""
    h.ensure_crd(kube)

    async def slowly(request: web.Request, event: cloudevent.CloudEvent) -> web.Response:
        await asyncio.sleep(0.05)  # a subscriber doing some work per event
        return web.Response(status=202)

    sink = h.Subscriber(respond=slowly)
    async with h.serving(sink):
        await h.create_channel(api_client, namespace, "sync", [h.subscriber_entry("s", sink)])
        async with dispatcher_process(kube) as process:
            await served(process, namespace, "sync")
            acknowledged: set[str] = set()
            stop = asyncio.Event()

            async def produce(worker: int, session: aiohttp.ClientSession) -> None:
                n = 0
                while not stop.is_set():
                    id = f"w{worker}-{n}"
                    n += 1
                    headers, data = _binary(id)
                    try:
                        async with session.post(
                            f"{process.url}/{namespace}/sync", data=data, headers=headers
                        ) as response:
                            if response.status == 202:
                                acknowledged.add(id)
                    except aiohttp.ClientError:
                        return  # the process is gone

            async with aiohttp.ClientSession() as session:
                producers = [asyncio.create_task(produce(w, session)) for w in range(16)]
                try:
                    await waiting.until(lambda: len(acknowledged) >= 200, within=60)
                    process.proc.send_signal(signal.SIGKILL)
                    await process.proc.wait()
                finally:
                    stop.set()
                    await asyncio.gather(*producers)
    received = set(sink.ids())
    assert len(acknowledged) >= 200
    assert acknowledged - received == set(), "acknowledged but never delivered"


async def test_a_dead_letter_keeps_the_producers_attributes_and_says_why(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    """Issue 18 point 5: a subscriber nobody can reach; the dead letter sink gets the event
    as the producer sent it (no `time` added) with Knative's error extensions, the body of
    a transport failure being `dispatch error: <why>` (base64), as Knative records it."""
    h.ensure_crd(kube)
    dls = h.Subscriber()
    gone = f"http://127.0.0.1:{_free_port()}/"  # nothing listens there
    async with h.serving(dls):
        await h.create_channel(
            api_client, namespace, "dead",
            [{"uid": "u", "generation": 1, "subscriberUri": gone,
              "delivery": {"deadLetterSink": {"uri": dls.url}}}],
        )  # fmt: skip
        async with dispatcher_process(kube) as process:
            await served(process, namespace, "dead")
            headers, data = _binary("d-1")
            status, _, _ = await h.post(
                f"{process.url}/{namespace}/dead", headers=headers, body=data
            )
            assert status == 202  # synchronous: answered once the dead letter sink took it
    dead = next(e for e in dls.events if e.get_id() == "d-1")
    attributes = dead.get_attributes()
    assert "time" not in attributes
    assert attributes["knativeerrorcode"] == "500"
    why = base64.standard_b64decode(attributes["knativeerrordata"]).decode()
    assert why.startswith("dispatch error: ClientConnectorError: Cannot connect to host"), why
