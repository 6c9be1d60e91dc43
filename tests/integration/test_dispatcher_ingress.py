"""The channel ingress HTTP contract: routing, answers with clear bodies, backpressure, drain."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from kevents import cloudevent
from tests import cluster, waiting
from tests.integration import dispatcher_harness as h

pytestmark = pytest.mark.cluster

NOT_AN_EVENT = {"Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def _crd(kube: cluster.Kube) -> None:
    h.ensure_crd(kube)


@pytest.mark.parametrize(
    ("method", "path", "host", "body", "headers", "status", "text"),
    [
        ("POST", "/{ns}/ch", None, None, None, 202, ""),
        ("POST", "/{ns}/ch/", None, None, None, 202, ""),
        ("POST", "/", "ch-kn-channel.{ns}.svc.cluster.local", None, None, 202, ""),
        ("POST", "/", "ch-kn-channel.{ns}.svc.cluster.local:80", None, None, 202, ""),
        ("POST", "/{ns}/nope", None, None, None, 404, "channel {ns}/nope not found"),
        ("POST", "/", "nope-kn-channel.{ns}.svc", None, None, 404, "not found"),
        ("POST", "/a/b/c", None, None, None, 400, "names no channel"),
        ("POST", "/", "localhost", None, None, 400, "cannot tell the channel from Host"),
        ("POST", "/{ns}/ch", None, b'{"a": 1}', NOT_AN_EVENT, 400, "no ce-specversion header"),
        (
            "POST",
            "/{ns}/ch",
            None,
            b"",
            {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s"},
            400,
            "missing required attribute(s): id",
        ),
        (
            "POST",
            "/{ns}/ch",
            None,
            b"{not json",
            {"Content-Type": "application/cloudevents+json"},
            400,
            "invalid CloudEvent",
        ),
        ("POST", "/{ns}/ch", None, b"x" * 5000, None, 413, "larger than 4096 bytes"),
        ("GET", "/{ns}/ch", None, b"", {}, 405, "only POST is allowed"),
        ("PUT", "/{ns}/ch", None, b"", {}, 405, "only POST is allowed"),
    ],
    ids=[
        "path",
        "path-trailing-slash",
        "host",
        "host-with-port",
        "unknown-channel-path",
        "unknown-channel-host",
        "three-segments",
        "host-one-label",
        "plain-json",
        "missing-id",
        "broken-structured",
        "too-large",
        "get",
        "put",
    ],
)
async def test_ingress_answers(
    api_client: client.ApiClient,
    namespace: str,
    method: str,
    path: str,
    host: str | None,
    body: bytes | None,
    headers: dict[str, str] | None,
    status: int,
    text: str,
) -> None:
    sub = h.Subscriber()
    async with (
        h.serving(sub),
        h.running_dispatcher(api_client, KEVENTS_MAX_BODY_SIZE="4096") as dispatcher,
    ):
        await h.create_channel(api_client, namespace, "ch", [h.subscriber_entry("u1", sub)])
        await h.served(dispatcher, namespace, "ch", 1)
        send_headers = dict(headers or {})
        if host is not None:
            send_headers["Host"] = host.format(ns=namespace)
        ce = h.event() if body is None else None
        got = await h.post(
            dispatcher.server.url + path.format(ns=namespace),
            ce,
            headers=send_headers,
            body=body,
            method=method,
        )
        assert got[0] == status
        assert text.format(ns=namespace) in got[1]
        if status == 202:
            await waiting.until(lambda: len(sub.events) == 1)
        if status == 405:
            assert got[2]["Allow"] == "POST, OPTIONS"


async def test_options_and_structured_events(api_client: client.ApiClient, namespace: str) -> None:
    sub = h.Subscriber()
    async with h.serving(sub), h.running_dispatcher(api_client) as dispatcher:
        await h.create_channel(api_client, namespace, "ch", [h.subscriber_entry("u1", sub)])
        await h.served(dispatcher, namespace, "ch", 1)
        url = f"{dispatcher.server.url}/{namespace}/ch"
        status, _, headers = await h.post(url, method="OPTIONS")
        assert status == 200
        assert headers["Allow"] == "POST, OPTIONS"
        assert headers["WebHook-Allowed-Origin"] == "*"
        assert headers["WebHook-Allowed-Rate"] == "*"
        assert (await h.post(url, h.event("s-1"), structured=True))[0] == 202
        await waiting.until(lambda: sub.ids() == ["s-1"])
        assert sub.events[0].get_data() == {"hello": "world"}


async def test_full_queue_answers_429_with_retry_after_and_recovers(
    api_client: client.ApiClient, namespace: str
) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request, ev: cloudevent.CloudEvent) -> web.Response:
        await release.wait()
        return web.Response(status=202)

    sub = h.Subscriber(respond=slow)
    registry = CollectorRegistry()
    async with (
        h.serving(sub),
        h.running_dispatcher(
            api_client,
            registry=registry,
            KEVENTS_QUEUE_SIZE="3",
            KEVENTS_SUBSCRIBER_CONCURRENCY="1",
        ) as dispatcher,
    ):
        await h.create_channel(
            api_client, namespace, "ch", [h.subscriber_entry("u1", sub)], annotations=h.ASYNC
        )
        await h.served(dispatcher, namespace, "ch", 1)
        url = f"{dispatcher.server.url}/{namespace}/ch"
        for i in range(3):
            assert (await h.post(url, h.event(f"q-{i}")))[0] == 202
        status, text, headers = await h.post(url, h.event("q-3"))
        assert status == 429
        assert "channel is at capacity" in text
        assert headers["Retry-After"] == "1"
        assert registry.get_sample_value("kevents_dispatcher_queue_depth") == 3.0
        release.set()
        await waiting.until(lambda: dispatcher.fanout.pending == 0)
        assert (await h.post(url, h.event("q-4")))[0] == 202
        await waiting.until(lambda: len(sub.events) == 4)
        assert sorted(sub.ids()) == ["q-0", "q-1", "q-2", "q-4"]
        assert (
            registry.get_sample_value(
                "kevents_dispatcher_events_received_total",
                {"result": "rejected", "response_code": "429"},
            )
            == 1.0
        )


async def test_full_subscriber_backlog_answers_429(
    api_client: client.ApiClient, namespace: str
) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request, ev: cloudevent.CloudEvent) -> web.Response:
        await release.wait()
        return web.Response(status=202)

    stuck, fast = h.Subscriber(respond=slow), h.Subscriber()
    async with (
        h.serving(stuck, fast),
        h.running_dispatcher(
            api_client, KEVENTS_SUBSCRIBER_CONCURRENCY="1", KEVENTS_SUBSCRIBER_BACKLOG="1"
        ) as dispatcher,
    ):
        await h.create_channel(
            api_client, namespace, "slow", [h.subscriber_entry("u1", stuck)], annotations=h.ASYNC
        )
        await h.create_channel(
            api_client, namespace, "fast", [h.subscriber_entry("u2", fast)], annotations=h.ASYNC
        )
        await h.served(dispatcher, namespace, "slow", 1)
        await h.served(dispatcher, namespace, "fast", 1)
        slow_url = f"{dispatcher.server.url}/{namespace}/slow"
        assert (await h.post(slow_url, h.event("a")))[0] == 202  # in flight
        assert (await h.post(slow_url, h.event("b")))[0] == 202  # in the backlog
        assert (await h.post(slow_url, h.event("c")))[0] == 429
        # another channel is not held up by the stuck subscriber
        for i in range(5):
            assert (await h.post(f"{dispatcher.server.url}/{namespace}/fast", h.event(f"f{i}")))[
                0
            ] == 202
        await waiting.until(lambda: len(fast.events) == 5)
        release.set()
        await waiting.until(lambda: sorted(stuck.ids()) == ["a", "b"])


async def test_draining_answers_503_and_delivers_what_was_accepted(
    api_client: client.ApiClient, namespace: str
) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request, ev: cloudevent.CloudEvent) -> web.Response:
        await release.wait()
        return web.Response(status=202)

    sub = h.Subscriber(respond=slow)
    async with h.serving(sub), h.running_dispatcher(api_client) as dispatcher:
        await h.create_channel(
            api_client, namespace, "ch", [h.subscriber_entry("u1", sub)], annotations=h.ASYNC
        )
        await h.served(dispatcher, namespace, "ch", 1)
        url = f"{dispatcher.server.url}/{namespace}/ch"
        assert (await h.post(url, h.event("before")))[0] == 202
        drained = asyncio.create_task(dispatcher.fanout.drain(10))
        await waiting.until(lambda: dispatcher.fanout.draining)
        status, text, headers = await h.post(url, h.event("during"))
        assert (status, headers["Retry-After"]) == (503, "1")
        assert "shutting down" in text
        release.set()
        assert await drained is True
        assert sub.ids() == ["before"]
