"""The broker in a real dispatcher process: ingress, Trigger filters, replies, TTL, DLS, traces.

The controller's part is played by the test: a Broker's trigger channel (an InMemoryChannel
labelled as Knative labels it) whose `spec.subscribers` name the broker filter URI of each
Trigger, and Triggers on the real API server with `status.subscriberUri` set, as the
Trigger reconciler writes them. Events then enter through the broker ingress over HTTP.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client
from opentelemetry.sdk import resources
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dispatcher import service
from kevents import cloudevent
from tests import cluster, waiting
from tests.integration import dispatcher_harness as h

pytestmark = pytest.mark.cluster

FILTER = "http://broker-filter.kevents-system.svc.cluster.local/triggers"
EVENTING = ("eventing.knative.dev", "v1")


@pytest.fixture(autouse=True)
def _crds(kube: cluster.Kube) -> None:
    h.ensure_crd(kube)


async def make_trigger(
    api: client.ApiClient, namespace: str, name: str, subscriber: h.Subscriber, **spec: Any
) -> str:
    """A Trigger with its subscriber resolved (as the controller would); returns its uid."""
    objects = client.CustomObjectsApi(api)
    body = {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": {"name": name},
        "spec": {"broker": "default", "subscriber": {"uri": subscriber.url}, **spec},
    }
    created = await objects.create_namespaced_custom_object(*EVENTING, namespace, "triggers", body)
    await objects.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
        *EVENTING, namespace, "triggers", name, {"status": {"subscriberUri": subscriber.url}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    return str(created["metadata"]["uid"])


def trigger_entry(
    namespace: str, name: str, uid: str, ingress: str, **delivery: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "uid": f"sub-{name}",
        "generation": 1,
        "subscriberUri": f"{FILTER}/{namespace}/{name}/{uid}",
        "replyUri": ingress,
    }
    if delivery:
        entry["delivery"] = delivery
    return entry


async def make_broker_channel(
    api: client.ApiClient, namespace: str, subscribers: list[dict[str, Any]]
) -> None:
    body = {
        "apiVersion": "messaging.knative.dev/v1",
        "kind": "InMemoryChannel",
        "metadata": {
            "name": "default-kne-trigger",
            "labels": {
                "eventing.knative.dev/broker": "default",
                "eventing.knative.dev/brokerEverything": "true",
            },
        },
        "spec": {"subscribers": subscribers},
    }
    await client.CustomObjectsApi(api).create_namespaced_custom_object(
        h.GROUP, h.VERSION, namespace, h.PLURAL, body
    )


async def known(dispatcher: service.Dispatcher, namespace: str, *names: str) -> None:
    """Wait until the dispatcher serves the broker and knows every Trigger resolved."""

    def ready() -> bool:
        route = dispatcher.fanout.brokers.get((namespace, "default"))
        found = [dispatcher.triggers.get((namespace, n)) for n in names]
        return route is not None and all(t is not None and not t.problem for t in found)

    await waiting.until(ready)


def ingress_url(dispatcher: service.Dispatcher, namespace: str, broker: str = "default") -> str:
    return f"{dispatcher.broker_server.url}/{namespace}/{broker}"


@pytest.fixture
async def dispatcher(api_client: client.ApiClient) -> AsyncIterator[service.Dispatcher]:
    async with h.running_dispatcher(api_client) as running:
        yield running


async def test_broker_ingress_answers_as_knative(
    api_client: client.ApiClient, namespace: str, dispatcher: service.Dispatcher
) -> None:
    await make_broker_channel(api_client, namespace, [])
    await waiting.until(lambda: (namespace, "default") in dispatcher.fanout.brokers)
    base = dispatcher.broker_server.url
    assert (await h.post(f"{base}/", h.event()))[0] == 404
    assert (await h.post(f"{base}/{namespace}", h.event()))[0] == 400
    status, text, _ = await h.post(f"{base}/{namespace}/nope", h.event())
    assert (status, text) == (404, f"broker {namespace}/nope not found\n")
    status, text, _ = await h.post(
        ingress_url(dispatcher, namespace), h.event(knativebrokerttl="0")
    )
    assert status == 400 and "knativebrokerttl is 0" in text
    assert (await h.post(ingress_url(dispatcher, namespace), body=b"{}"))[0] == 400
    assert (await h.post(ingress_url(dispatcher, namespace), h.event()))[0] == 202


async def test_two_triggers_split_a_mixed_stream_exactly(
    api_client: client.ApiClient, namespace: str, dispatcher: service.Dispatcher
) -> None:
    failed, adds = h.Subscriber(), h.Subscriber()
    async with h.serving(failed, adds):
        ingress = ingress_url(dispatcher, namespace)
        uid_f = await make_trigger(
            api_client,
            namespace,
            "failed-builds",
            failed,
            filter={"attributes": {"buildstatus": "failed"}},
        )
        uid_a = await make_trigger(
            api_client, namespace, "adds", adds,
            filters=[{"cesql": "type LIKE 'dev.knative.%.add' AND source = 'x'"}],
        )  # fmt: skip
        await make_broker_channel(
            api_client,
            namespace,
            [
                trigger_entry(namespace, "failed-builds", uid_f, ingress),
                trigger_entry(namespace, "adds", uid_a, ingress),
            ],
        )
        await known(dispatcher, namespace, "failed-builds", "adds")
        sent: dict[str, set[str]] = {"failed": set(), "adds": set()}
        for i in range(30):
            status = "failed" if i % 3 == 0 else "passed"
            kind = "dev.knative.apiserver.resource.add" if i % 2 == 0 else "dev.knative.other"
            source = "x" if i % 5 else "y"
            event = cloudevent.build(
                kind, source, {"i": i}, id=f"e{i}", extensions={"buildstatus": status}
            )
            assert (await h.post(ingress, event))[0] == 202
            if status == "failed":
                sent["failed"].add(f"e{i}")
            if kind.endswith(".add") and source == "x":
                sent["adds"].add(f"e{i}")
        await waiting.until(lambda: dispatcher.fanout.pending == 0)
        assert sorted(failed.ids()) == sorted(sent["failed"])
        assert sorted(adds.ids()) == sorted(sent["adds"])
        # Knative's filter removes the broker's internal hop count before delivery.
        assert not any("knativebrokerttl" in e.get_attributes() for e in failed.events)
        assert not any("ce-knativebrokerttl" in {k.lower() for k in hs} for hs in failed.headers)
        # ... and names the Trigger's namespace (rekt TestBrokerWithManyTriggers).
        named = {
            value for hs in failed.headers + adds.headers
            for name, value in hs.items() if name.lower() == "kn-namespace"
        }  # fmt: skip
        assert named == {namespace}


async def test_a_reply_reaches_a_second_trigger_and_a_reply_loop_ends_at_the_ttl(
    api_client: client.ApiClient, namespace: str, dispatcher: service.Dispatcher
) -> None:
    async def reply_with(kind: str) -> h.Responder:
        async def respond(request: web.Request, event: cloudevent.CloudEvent) -> web.Response:
            reply = cloudevent.build(
                kind, "/replier", {"from": event.get_id()}, datacontenttype="application/json"
            )
            message = cloudevent.encode(reply)
            return web.Response(status=200, body=message.body, headers=dict(message.headers))

        return respond

    first = h.Subscriber(respond=await reply_with("dev.example.reply"))
    second = h.Subscriber()
    looper = h.Subscriber(respond=await reply_with("dev.example.loop"))
    async with h.serving(first, second, looper):
        ingress = ingress_url(dispatcher, namespace)
        uids = {
            "first": await make_trigger(
                api_client,
                namespace,
                "first",
                first,
                filter={"attributes": {"type": "dev.example.order"}},
            ),
            "second": await make_trigger(
                api_client,
                namespace,
                "second",
                second,
                filter={"attributes": {"type": "dev.example.reply"}},
            ),
            "looper": await make_trigger(
                api_client,
                namespace,
                "looper",
                looper,
                filter={"attributes": {"type": "dev.example.loop"}},
            ),
        }
        await make_broker_channel(
            api_client,
            namespace,
            [trigger_entry(namespace, n, u, ingress) for n, u in uids.items()],
        )
        await known(dispatcher, namespace, *uids)
        order = cloudevent.build("dev.example.order", "/shop", {"n": 1}, id="order-1")
        assert (await h.post(ingress, order))[0] == 202
        await waiting.until(lambda: len(second.events) == 1)
        assert second.events[0].get_data() == {"from": "order-1"}
        assert "knativebrokerttl" not in second.events[0].get_attributes()
        # The looper answers every loop event with another one: TTL 4 allows 4 deliveries.
        loop = cloudevent.build(
            "dev.example.loop", "/shop", id="loop-0", extensions={"knativebrokerttl": 4}
        )
        assert (await h.post(ingress, loop))[0] == 202
        await waiting.until(
            lambda: dispatcher.metrics.replies_dropped.labels("ttl_exhausted")._value.get() == 1
        )
        await waiting.until(lambda: dispatcher.fanout.pending == 0)
        # The subscribers never see the TTL, yet the replies carry it back into the broker,
        # one lower each hop: the loop ends after 4 deliveries.
        assert [e.get_id() for e in looper.events][:1] == ["loop-0"]
        assert len(looper.events) == 4
        assert not any("knativebrokerttl" in e.get_attributes() for e in looper.events)


async def test_a_failing_subscriber_is_retried_then_dead_lettered_with_the_error_extensions(
    api_client: client.ApiClient, namespace: str, dispatcher: service.Dispatcher
) -> None:
    async def broken(request: web.Request, event: cloudevent.CloudEvent) -> web.Response:
        return web.Response(status=503, text="build farm down")

    failing, dls = h.Subscriber(respond=broken), h.Subscriber()
    async with h.serving(failing, dls):
        ingress = ingress_url(dispatcher, namespace)
        uid = await make_trigger(api_client, namespace, "builds", failing)
        delivery = {"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT0.05S",
                    "deadLetterSink": {"uri": dls.url}}  # fmt: skip
        await make_broker_channel(
            api_client, namespace, [trigger_entry(namespace, "builds", uid, ingress, **delivery)]
        )
        await known(dispatcher, namespace, "builds")
        assert (await h.post(ingress, h.event("b-1")))[0] == 202
        await waiting.until(lambda: len(dls.events) == 1)
        assert failing.attempts == 3
        dead = dls.events[0].get_attributes()
        assert dead["id"] == "b-1"
        assert dead["knativeerrordest"] == failing.url
        assert dead["knativeerrorcode"] == "503"
        assert base64.b64decode(dead["knativeerrordata"]) == b"build farm down"


async def test_a_trace_spans_ingress_filter_and_subscriber(
    api_client: client.ApiClient, namespace: str
) -> None:
    exporter = InMemorySpanExporter()

    def named(service_name: str) -> sdk_trace.TracerProvider:
        """A provider whose spans carry `service_name`, as `python -m dispatcher` makes them."""
        resource = resources.Resource.create({resources.SERVICE_NAME: service_name})
        provider = sdk_trace.TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider

    display = h.Subscriber()
    async with (
        h.serving(display),
        h.running_dispatcher(
            api_client,
            tracer_provider=named("imc-dispatcher"),
            broker_tracer_providers=(named("broker-ingress"), named("broker-filter")),
        ) as dispatcher,
    ):
        ingress = ingress_url(dispatcher, namespace)
        uid = await make_trigger(api_client, namespace, "all", display)
        await make_broker_channel(
            api_client, namespace, [trigger_entry(namespace, "all", uid, ingress)]
        )
        await known(dispatcher, namespace, "all")
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        parent = f"00-{trace_id}-00f067aa0ba902b7-01"
        assert (await h.post(ingress, h.event("t-1"), headers={"traceparent": parent}))[0] == 202
        await waiting.until(lambda: len(display.events) == 1)
        await waiting.until(lambda: len(exporter.get_finished_spans()) >= 3)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert {"broker.ingress", "broker.filter", "POST"} <= spans.keys()
    assert {format(s.context.trace_id, "032x") for s in spans.values()} == {trace_id}
    assert spans["broker.filter"].parent is not None
    assert spans["broker.filter"].parent.span_id == spans["broker.ingress"].context.span_id
    assert spans["POST"].parent is not None
    assert spans["POST"].parent.span_id == spans["broker.filter"].context.span_id
    # the delivery to the Trigger's subscriber is the filter's hop, named so in Zipkin
    service = {name: s.resource.attributes[resources.SERVICE_NAME] for name, s in spans.items()}
    assert service == {
        "broker.ingress": "broker-ingress", "broker.filter": "broker-filter",
        "POST": "broker-filter",
    }  # fmt: skip
    assert display.headers[0]["traceparent"].split("-")[1] == trace_id


async def test_the_filter_endpoint_serves_channels_delivered_elsewhere(
    api_client: client.ApiClient, namespace: str, dispatcher: service.Dispatcher
) -> None:
    async def reply(request: web.Request, event: cloudevent.CloudEvent) -> web.Response:
        message = cloudevent.encode(cloudevent.build("dev.example.reply", "/r", id="r-1"))
        return web.Response(status=200, body=message.body, headers=dict(message.headers))

    replier = h.Subscriber(respond=reply)
    async with h.serving(replier):
        uid = await make_trigger(
            api_client,
            namespace,
            "orders",
            replier,
            filter={"attributes": {"type": "dev.example.test"}},
        )
        await waiting.until(
            lambda: (
                (namespace, "orders") in dispatcher.triggers
                and not dispatcher.triggers[(namespace, "orders")].problem
            )
        )
        url = f"{dispatcher.broker_server.url}/triggers/{namespace}/orders/{uid}"
        assert (
            await h.post(
                f"{dispatcher.broker_server.url}/triggers/{namespace}/orders/other", h.event()
            )
        )[0] == 404
        unmatched = cloudevent.build("dev.other", "/s", id="u-1")
        assert (await h.post(url, unmatched))[0] == 202
        assert replier.events == []
        status, _, answer = await h.post(url, h.event("m-1", knativebrokerttl="9"))
        assert status == 200
        assert answer["ce-id"] == "r-1"
        assert answer["ce-knativebrokerttl"] == "8"
        assert replier.ids() == ["m-1"]


async def test_the_filter_endpoint_answers_a_failure_with_the_real_destination(
    api_client: client.ApiClient, namespace: str, dispatcher: service.Dispatcher
) -> None:
    async def broken(request: web.Request, event: cloudevent.CloudEvent) -> web.Response:
        return web.Response(status=503, text="busy")

    failing = h.Subscriber(respond=broken)
    async with h.serving(failing):
        uid = await make_trigger(api_client, namespace, "busy", failing)

        def known_trigger() -> bool:
            found = dispatcher.triggers.get((namespace, "busy"))
            return found is not None and not found.problem

        await waiting.until(known_trigger)
        url = f"{dispatcher.broker_server.url}/triggers/{namespace}/busy/{uid}"
        status, text, answer = await h.post(url, h.event("f-1"))
        assert status == 503
        assert answer["Content-Type"].startswith("application/json")
        assert json.loads(text) == {
            "errdestination": failing.url,
            "errresponsebody": base64.b64encode(b"busy").decode(),
        }
        assert failing.attempts == 1  # one attempt: retries are the calling channel's


V03 = {
    "specversion": "0.3", "source": "/tests/v03", "type": "dev.example.v03",
    "schemaurl": "http://example.com/schema", "datacontenttype": "application/octet-stream",
    "datacontentencoding": "base64", "data": "AAEC/w==",
}  # fmt: skip


async def test_cloudevents_0_3_is_accepted_and_delivered_as_0_3(
    api_client: client.ApiClient, namespace: str, dispatcher: service.Dispatcher
) -> None:
    """rekt's Broker and Channel conformance (AcceptsCEVersions, ShouldNotUpdateVersion): a
    0.3 event, structured with base64 data or binary, is accepted (202) and its subscriber
    gets it as 0.3, its schema and bytes intact, filtered on either version's schema name."""
    sub = h.Subscriber()
    async with h.serving(sub):
        uid = await make_trigger(
            api_client, namespace, "v03", sub,
            filters=[{"exact": {"dataschema": "http://example.com/schema"}}],
        )  # fmt: skip
        await make_broker_channel(
            api_client, namespace, [trigger_entry(namespace, "v03", uid, ingress_url(
                dispatcher, namespace))],
        )  # fmt: skip
        await known(dispatcher, namespace, "v03")
        structured = json.dumps({**V03, "id": "s-1"}).encode()
        status, text, _ = await h.post(
            ingress_url(dispatcher, namespace), body=structured,
            headers={"Content-Type": "application/cloudevents+json"},
        )  # fmt: skip
        assert (status, text) == (202, "")
        binary = {f"ce-{k}": v for k, v in V03.items() if not k.startswith("data")}
        binary.update({"ce-id": "b-1", "Content-Type": "text/plain"})
        status, _, _ = await h.post(
            ingress_url(dispatcher, namespace), body=b"plain", headers=binary
        )
        assert status == 202
        await waiting.until(lambda: len(sub.events) == 2)
    by_id = {e.get_id(): e for e in sub.events}
    assert {e.get_specversion() for e in sub.events} == {"0.3"}
    assert by_id["s-1"].get_data() == b"\x00\x01\x02\xff"
    assert by_id["b-1"].get_data() == "plain"
    assert {e.get_attributes()["schemaurl"] for e in sub.events} == {"http://example.com/schema"}
