"""Fan-out with Knative delivery semantics: every subscriber once, replies, retries, DLS."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from kevents import cloudevent, sender
from tests import cluster, waiting
from tests.integration import dispatcher_harness as h

pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True)
def _crd(kube: cluster.Kube) -> None:
    h.ensure_crd(kube)


async def test_one_event_reaches_each_of_three_subscribers_exactly_once(
    api_client: client.ApiClient, namespace: str
) -> None:
    subs = [h.Subscriber(), h.Subscriber(), h.Subscriber()]
    async with h.serving(*subs), h.running_dispatcher(api_client) as dispatcher:
        await h.create_channel(
            api_client,
            namespace,
            "orders",
            [h.subscriber_entry(f"uid-{i}", sub) for i, sub in enumerate(subs)],
        )
        await h.served(dispatcher, namespace, "orders", 3)
        status, text, _ = await h.post(
            f"{dispatcher.server.url}/{namespace}/orders",
            h.event("order-1"),
            headers={
                "X-Request-Id": "req-7",
                "Knative-Custom": "kept",
                "Authorization": "Bearer secret",
                "Cookie": "a=b",
            },
        )
        assert (status, text) == (202, "")
        await waiting.until(lambda: all(s.events for s in subs))
        await waiting.until(lambda: dispatcher.fanout.pending == 0)
        for sub in subs:
            assert sub.ids() == ["order-1"]
            assert sub.events[0].get_data() == {"hello": "world"}
            sent = {k.lower(): v for k, v in sub.headers[0].items()}
            assert sent["prefer"] == "reply"
            assert sent["x-request-id"] == "req-7"
            assert sent["knative-custom"] == "kept"
            assert "authorization" not in sent
            assert "cookie" not in sent


async def test_subscribers_are_reported_ready_in_channel_status(
    api_client: client.ApiClient, namespace: str
) -> None:
    sub = h.Subscriber()
    async with h.serving(sub), h.running_dispatcher(api_client):
        await h.create_channel(
            api_client,
            namespace,
            "ch",
            [
                h.subscriber_entry("uid-ok", sub),
                h.subscriber_entry("uid-bad", sub, backoffDelay="soon"),
            ],
        )
        observed: list[Any] = []

        async def report() -> list[Any]:
            obj = await h.get_channel(api_client, namespace, "ch")
            return list(obj.get("status", {}).get("subscribers", []))

        for _ in range(200):
            observed = await report()
            if len(observed) == 2:
                break
            await asyncio.sleep(0.05)
        assert observed[0] == {"uid": "uid-ok", "observedGeneration": 1, "ready": "True"}
        assert observed[1]["uid"] == "uid-bad"
        assert observed[1]["ready"] == "False"
        assert "delivery.backoffDelay" in observed[1]["message"]


@pytest.mark.parametrize("structured", [False, True], ids=["binary-reply", "structured-reply"])
async def test_reply_in_a_2xx_response_goes_to_the_reply_destination(
    api_client: client.ApiClient, namespace: str, structured: bool
) -> None:
    async def answer(request: web.Request, ev: cloudevent.CloudEvent) -> web.Response:
        reply = cloudevent.build(
            "dev.example.reply",
            "/replier",
            {"re": ev.get_id()},
            id=f"reply-to-{ev.get_id()}",
            datacontenttype="application/json",
        )
        encoding = cloudevent.Encoding.STRUCTURED if structured else cloudevent.Encoding.BINARY
        message = cloudevent.encode(reply, encoding)
        return web.Response(status=200, body=message.body, headers=dict(message.headers))

    replier, replies = h.Subscriber(respond=answer), h.Subscriber()
    async with h.serving(replier, replies), h.running_dispatcher(api_client) as dispatcher:
        await h.create_channel(
            api_client, namespace, "ch", [h.subscriber_entry("u1", replier, reply=replies)]
        )
        await h.served(dispatcher, namespace, "ch", 1)
        status, _, _ = await h.post(
            f"{dispatcher.server.url}/{namespace}/ch",
            h.event("q-1"),
            headers={"X-Request-Id": "r-1", "Kn-Namespace": "not-the-producers-to-say"},
        )
        assert status == 202
        await waiting.until(lambda: bool(replies.events))
        assert replies.ids() == ["reply-to-q-1"]
        assert replies.events[0].get_data() == {"re": "q-1"}
        # Knative's fan-out names the channel's namespace to the subscriber too (rekt
        # TestBrokerWithManyTriggers, HasKnNamespaceHeader).
        to_subscriber = {k.lower(): v for k, v in replier.headers[0].items()}
        assert to_subscriber["kn-namespace"] == namespace
        sent = {k.lower(): v for k, v in replies.headers[0].items()}
        assert "prefer" not in sent  # Prefer: reply goes to subscribers only
        assert sent["kn-namespace"] == namespace
        assert sent["x-request-id"] == "r-1"


@pytest.mark.parametrize(
    ("delivery", "waits"),
    [
        ({"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S"}, [0.2, 0.4, 0.8]),
        ({"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.5S"}, [0.5, 1.0]),
        ({"retry": 2}, []),
    ],
    ids=["exponential", "linear", "no-delay"],
)
async def test_500_is_retried_per_delivery_spec_then_dead_lettered_with_error_extensions(
    api_client: client.ApiClient,
    namespace: str,
    delivery: dict[str, Any],
    waits: list[float],
) -> None:
    async def fail(request: web.Request, ev: cloudevent.CloudEvent) -> web.Response:
        return web.Response(status=500, text="database is down")

    failing, dls = h.Subscriber(respond=fail), h.Subscriber()
    clock = h.FakeClock()
    registry = CollectorRegistry()
    async with (
        h.serving(failing, dls),
        sender.Sender(clock=clock) as event_sender,
        h.running_dispatcher(api_client, event_sender=event_sender, registry=registry) as d,
    ):
        spec: dict[str, Any] = {**delivery, "deadLetterSink": {"uri": dls.url}}
        await h.create_channel(
            api_client, namespace, "ch", [h.subscriber_entry("u1", failing, **spec)]
        )
        await h.served(d, namespace, "ch", 1)
        assert (await h.post(f"{d.server.url}/{namespace}/ch", h.event("e-500")))[0] == 202
        await waiting.until(lambda: bool(dls.events))
        assert failing.attempts == 1 + delivery["retry"]
        assert [round(w, 6) for w in clock.sleeps] == waits  # no delay: immediate retries
        dead = dls.events[0]
        assert dead.get_id() == "e-500"
        assert dead.get_data() == {"hello": "world"}  # the ORIGINAL event
        assert dead.get_extension("knativeerrordest") == failing.url
        assert dead.get_extension("knativeerrorcode") == "500"
        data = dead.get_extension("knativeerrordata")
        assert isinstance(data, str)
        assert base64.standard_b64decode(data) == b"database is down"
        assert registry.get_sample_value(
            "kevents_dispatcher_retries_total", {"destination": "subscriber"}
        ) == float(delivery["retry"])
        assert (
            registry.get_sample_value(
                "kevents_dispatcher_events_dispatched_total",
                {"destination": "dead_letter", "result": "delivered", "response_code_class": "2xx"},
            )
            == 1.0
        )


async def test_400_is_not_retried_and_is_dead_lettered_once(
    api_client: client.ApiClient, namespace: str
) -> None:
    async def refuse(request: web.Request, ev: cloudevent.CloudEvent) -> web.Response:
        return web.Response(status=400, text="bad order")

    refusing, dls = h.Subscriber(respond=refuse), h.Subscriber()
    clock = h.FakeClock()
    async with (
        h.serving(refusing, dls),
        sender.Sender(clock=clock) as event_sender,
        h.running_dispatcher(api_client, event_sender=event_sender) as d,
    ):
        spec: dict[str, Any] = {
            "retry": 5,
            "backoffDelay": "PT1S",
            "deadLetterSink": {"uri": dls.url},
        }
        await h.create_channel(
            api_client, namespace, "ch", [h.subscriber_entry("u1", refusing, **spec)]
        )
        await h.served(d, namespace, "ch", 1)
        assert (await h.post(f"{d.server.url}/{namespace}/ch", h.event("e-400")))[0] == 202
        await waiting.until(lambda: bool(dls.events))
        await waiting.until(lambda: d.fanout.pending == 0)
        assert refusing.attempts == 1
        assert clock.sleeps == []
        assert dls.events[0].get_extension("knativeerrorcode") == "400"


async def test_failed_reply_forwarding_dead_letters_the_original_event(
    api_client: client.ApiClient, namespace: str
) -> None:
    async def answer(request: web.Request, ev: cloudevent.CloudEvent) -> web.Response:
        message = cloudevent.encode(cloudevent.build("dev.example.reply", "/r", id="r-1"))
        return web.Response(status=200, body=message.body, headers=dict(message.headers))

    async def refuse(request: web.Request, ev: cloudevent.CloudEvent) -> web.Response:
        return web.Response(status=403, text="not you")

    replier, reply_dest, dls = (
        h.Subscriber(respond=answer),
        h.Subscriber(respond=refuse),
        h.Subscriber(),
    )
    async with h.serving(replier, reply_dest, dls), h.running_dispatcher(api_client) as d:
        entry = h.subscriber_entry("u1", replier, reply=reply_dest, deadLetterSink={"uri": dls.url})
        await h.create_channel(api_client, namespace, "ch", [entry])
        await h.served(d, namespace, "ch", 1)
        assert (await h.post(f"{d.server.url}/{namespace}/ch", h.event("orig")))[0] == 202
        await waiting.until(lambda: bool(dls.events))
        dead = dls.events[0]
        assert dead.get_id() == "orig"
        assert dead.get_extension("knativeerrordest") == reply_dest.url
        assert dead.get_extension("knativeerrorcode") == "403"


async def test_channel_delivery_is_the_default_and_loss_without_dls_is_counted(
    api_client: client.ApiClient, namespace: str
) -> None:
    async def unavailable(request: web.Request, ev: cloudevent.CloudEvent) -> web.Response:
        return web.Response(status=503)

    down = h.Subscriber(respond=unavailable)
    clock = h.FakeClock()
    registry = CollectorRegistry()
    async with (
        h.serving(down),
        sender.Sender(clock=clock) as event_sender,
        h.running_dispatcher(api_client, event_sender=event_sender, registry=registry) as d,
    ):
        await h.create_channel(
            api_client,
            namespace,
            "ch",
            [h.subscriber_entry("u1", down)],
            delivery={"retry": 1, "backoffDelay": "PT2S"},
        )
        await h.served(d, namespace, "ch", 1)
        # Synchronous (Knative's default): the producer learns the event was not delivered.
        status, text, _ = await h.post(f"{d.server.url}/{namespace}/ch", h.event("gone"))
        assert (status, text) == (
            500,
            "the event could not be delivered to 1 of 1 subscriber(s) (nor to a dead letter "
            "sink); retry\n",
        )
        assert d.fanout.pending == 0
        assert down.attempts == 2
        assert clock.sleeps == [2.0]
        assert (
            registry.get_sample_value("kevents_events_lost_total", {"reason": "retries_exhausted"})
            == 1.0
        )
