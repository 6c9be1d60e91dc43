"""The runtime on loopback: metrics and probes servers, a queue in front of a flaky sink, and the
runner draining everything on a stop request."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from kevents import (
    cloudevent,
    endpoints,
    errors,
    metrics,
    opserver,
    probes,
    retries,
    runner,
    sender,
    sendqueue,
    webserver,
)
from tests import waiting

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
    return port


class CountingSink:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def handle(self, request: web.Request) -> web.Response:
        await self.hold.wait()
        event = cloudevent.decode(request.headers, await request.read())
        self.ids.append(event.get_id())
        return web.Response(status=202)

    def server(self, port: int = 0) -> webserver.WebServer:
        app = web.Application()
        app.router.add_post("/", self.handle)
        return webserver.WebServer(app, host=HOST, port=port, name="sink", shutdown_timeout=1.0)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_metrics_endpoint_serves_sender_counters(http: aiohttp.ClientSession) -> None:
    registry = CollectorRegistry()
    sender_metrics = metrics.SenderMetrics(registry, namespace="default", name="ping")
    sink = CountingSink()
    sink_server = sink.server()
    (metrics_server,) = endpoints.servers(
        registry, probes.Readiness(), metrics_host=HOST, metrics_port=0, probes_port=None
    )
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(sink_server.run()), group.create_task(metrics_server.run())]
        await sink_server.wait_started()
        await metrics_server.wait_started()
        async with sender.Sender(sender_metrics=sender_metrics) as s:
            result = await s.send(cloudevent.build("t", "s", id="m1"), sink_server.url + "/")
        assert result.ok
        async with http.get(metrics_server.url + "/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
        for task in tasks:
            task.cancel()
    assert 'kevents_events_sent_total{response_code_class="2xx",result="delivered"} 1.0' in text
    assert 'event_count{event_scheme="http",name="ping",namespace_name="default"' in text
    assert "kevents_delivery_duration_seconds_bucket" in text


@pytest.mark.parametrize("server", ["endpoints", "aiohttp-app"])
async def test_knative_named_metrics_are_counters_promtool_can_read(
    http: aiohttp.ClientSession, server: str
) -> None:
    """`event_count` and `retry_event_count` are counters under Knative's exact names, in a
    scrape promtool parses; its only findings are the naming lints on those two names. Both
    ways of serving the exposition: `endpoints` (every deployable) and the aiohttp app (the
    dispatcher's workers, the display)."""
    registry = CollectorRegistry()
    sender_metrics = metrics.SenderMetrics(registry, namespace="default", name="ping")
    answers = [503, 202]

    async def flaky(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=answers.pop(0))

    app = web.Application()
    app.router.add_post("/", flaky)
    sink_server = webserver.WebServer(app, host=HOST, port=0, name="sink")
    metrics_server: opserver.Server | webserver.WebServer
    if server == "endpoints":
        metrics_server = opserver.Server(metrics.routes(registry), host=HOST, port=0)
    else:
        metrics_server = webserver.WebServer(metrics.make_app(registry), host=HOST, port=0)
    policy = retries.RetryPolicy(retry=1, backoff_delay=0.01)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(sink_server.run()), group.create_task(metrics_server.run())]
        await sink_server.wait_started()
        await metrics_server.wait_started()
        async with sender.Sender(policy=policy, sender_metrics=sender_metrics) as s:
            result = await s.send(cloudevent.build("t", "s", id="m1"), sink_server.url + "/")
        assert result.ok
        async with http.get(metrics_server.url + "/metrics") as response:
            text = await response.text()
        for task in tasks:
            task.cancel()
    assert "# TYPE event_count counter\n" in text
    assert "# TYPE retry_event_count counter\n" in text
    assert 'event_count{event_scheme="http",name="ping",namespace_name="default"' in text
    assert 'retry_event_count{event_scheme="http",name="ping",namespace_name="default"' in text
    promtool = await asyncio.create_subprocess_exec(
        "promtool", "check", "metrics",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await promtool.communicate(text.encode())
    findings = set(out.decode().splitlines())
    assert promtool.returncode in (0, 3), findings  # 1 would be a parse error
    assert findings <= {  # promtool's naming lint of Knative's names, nothing else
        'event_count counter metrics should have "_total" suffix',
        'retry_event_count counter metrics should have "_total" suffix',
        'event_count non-histogram and non-summary metrics should not have "_count" suffix',
        'retry_event_count non-histogram and non-summary metrics should not have "_count" suffix',
    }, findings


async def test_readiness_flips_and_health_stays_up(http: aiohttp.ClientSession) -> None:
    readiness = probes.Readiness()
    (_, server) = endpoints.servers(
        CollectorRegistry(), readiness, metrics_host=HOST, metrics_port=0,
        probes_host=HOST, probes_port=0,
    )  # fmt: skip
    async with asyncio.TaskGroup() as group:
        task = group.create_task(server.run())
        await server.wait_started()

        async def get(path: str) -> tuple[int, str]:
            async with http.get(server.url + path) as response:
                return response.status, await response.text()

        assert await get("/health") == (200, "ok")
        assert await get("/readiness") == (503, "not ready: starting")
        readiness.set_ready()
        assert await get("/readiness") == (200, "ready")
        readiness.set_not_ready("watch lost")
        assert await get("/readiness") == (503, "not ready: watch lost")
        assert await get("/health") == (200, "ok")
        task.cancel()


async def test_sink_down_then_up_loses_nothing_within_the_queue_bound() -> None:
    registry = CollectorRegistry()
    sender_metrics = metrics.SenderMetrics(registry)
    port = free_port()
    sink = CountingSink()
    policy = retries.RetryPolicy(retry=100, backoff_delay=0.01, backoff_cap=0.05)
    async with sender.Sender(policy=policy, sender_metrics=sender_metrics) as s:
        queue = sendqueue.SendQueue(
            s, f"http://{HOST}:{port}/", maxsize=20, workers=4, sender_metrics=sender_metrics
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(queue.run())
            for n in range(20):
                queue.try_put(cloudevent.build("t", "s", id=f"e{n}"))
            with pytest.raises(errors.QueueFullError):
                queue.try_put(cloudevent.build("t", "s", id="overflow"))
            await waiting.until(  # the sink is down: each worker's attempt is refused
                lambda: (registry.get_sample_value(
                    "kevents_send_retries_total", {"response_code_class": "none"}
                ) or 0) >= 4
            )  # fmt: skip
            assert sink.ids == []
            server = sink.server(port)
            server_task = group.create_task(server.run())
            await server.wait_started()
            assert await queue.drain(10.0)
            server_task.cancel()
    assert sorted(sink.ids) == sorted(f"e{n}" for n in range(20))
    assert registry.get_sample_value("kevents_events_lost_total", {"reason": "shutdown"}) is None
    retried = registry.get_sample_value(
        "kevents_send_retries_total", {"response_code_class": "none"}
    )
    assert retried is not None and retried >= 4  # each worker met the refused connection


async def test_runner_drains_in_flight_events_and_stops_in_reverse(
    http: aiohttp.ClientSession,
) -> None:
    registry = CollectorRegistry()
    sender_metrics = metrics.SenderMetrics(registry)
    readiness = probes.Readiness()
    sink = CountingSink()
    sink.hold.clear()  # deliveries stay in flight until released
    sink_server = sink.server()
    metrics_server, probes_server = endpoints.servers(
        registry, readiness, metrics_host=HOST, metrics_port=0, probes_host=HOST, probes_port=0
    )
    event_sender = sender.Sender(sender_metrics=sender_metrics)
    async with asyncio.TaskGroup() as group:
        sink_task = group.create_task(sink_server.run())
        await sink_server.wait_started()
        queue = sendqueue.SendQueue(
            event_sender, sink_server.url + "/", workers=2, grace=10.0,
            sender_metrics=sender_metrics,
        )  # fmt: skip
        run = runner.Runner(
            [metrics_server, probes_server, event_sender, queue],
            readiness=readiness,
            handle_signals=False,
        )
        run_task = group.create_task(run.run())
        await queue.wait_started()
        readiness.set_ready()
        for n in range(5):
            await queue.put(cloudevent.build("t", "s", id=f"r{n}"))
        async with http.get(probes_server.url + "/readiness") as response:
            assert response.status == 200
        run.request_stop()  # what SIGTERM does
        await waiting.until(lambda: not readiness.ready)
        assert sink.ids == []  # still in flight: the runner is draining, not exiting
        sink.hold.set()
        assert await run_task == 0
        sink_task.cancel()
    assert sorted(sink.ids) == [f"r{n}" for n in range(5)]
    assert not event_sender.is_open  # closed after the queue drained
