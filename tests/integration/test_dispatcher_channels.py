"""Channels and subscribers change while the dispatcher runs; restarts lose nothing acknowledged;
one trace from the producer through the dispatcher to every subscriber."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kevents import names, tracing
from tests import cluster, waiting
from tests.integration import dispatcher_harness as h

pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True)
def _crd(kube: cluster.Kube) -> None:
    h.ensure_crd(kube)


async def test_subscribers_added_and_removed_take_effect_without_restart(
    api_client: client.ApiClient, namespace: str
) -> None:
    first, second = h.Subscriber(), h.Subscriber()
    async with h.serving(first, second), h.running_dispatcher(api_client) as dispatcher:
        url = f"{dispatcher.server.url}/{namespace}/ch"
        await h.create_channel(api_client, namespace, "ch", [h.subscriber_entry("u1", first)])
        await h.served(dispatcher, namespace, "ch", 1)
        assert (await h.post(url, h.event("one")))[0] == 202

        both = [h.subscriber_entry("u1", first), h.subscriber_entry("u2", second)]
        await h.set_subscribers(api_client, namespace, "ch", both)
        await h.served(dispatcher, namespace, "ch", 2)
        assert (await h.post(url, h.event("two")))[0] == 202
        await waiting.until(lambda: len(second.events) == 1 and len(first.events) == 2)

        await h.set_subscribers(api_client, namespace, "ch", [h.subscriber_entry("u2", second)])
        await h.served(dispatcher, namespace, "ch", 1)
        assert (await h.post(url, h.event("three")))[0] == 202
        await waiting.until(lambda: len(second.events) == 2)
        await waiting.until(lambda: dispatcher.fanout.pending == 0)
        assert first.ids() == ["one", "two"]
        assert second.ids() == ["two", "three"]

        await client.CustomObjectsApi(api_client).delete_namespaced_custom_object(
            h.GROUP, h.VERSION, namespace, h.PLURAL, "ch"
        )
        await waiting.until(lambda: (namespace, "ch") not in dispatcher.fanout.routes)
        assert (await h.post(url, h.event("four")))[0] == 404


async def test_restart_serves_existing_channels_and_loses_nothing_acknowledged(
    api_client: client.ApiClient, namespace: str
) -> None:
    sub = h.Subscriber()
    async with h.serving(sub):
        await h.create_channel(api_client, namespace, "ch", [h.subscriber_entry("u1", sub)])
        async with h.running_dispatcher(api_client) as dispatcher:
            await h.served(dispatcher, namespace, "ch", 1)
            url = f"{dispatcher.server.url}/{namespace}/ch"
            for i in range(20):
                assert (await h.post(url, h.event(f"a{i}")))[0] == 202
        # stopped: everything acknowledged before was delivered during the drain
        assert sorted(sub.ids()) == sorted(f"a{i}" for i in range(20))
        async with h.running_dispatcher(api_client) as dispatcher:
            # the channel is served as soon as the new process is ready: no 404 window
            url = f"{dispatcher.server.url}/{namespace}/ch"
            acknowledged = []
            for i in range(20):
                if (await h.post(url, h.event(f"b{i}")))[0] == 202:
                    acknowledged.append(f"b{i}")
            assert len(acknowledged) == 20
        assert sorted(sub.ids()) == sorted([f"a{i}" for i in range(20)] + acknowledged)


async def test_trace_from_producer_to_two_subscribers_is_one_trace(
    api_client: client.ApiClient, namespace: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = tracing.make_provider(
        tracing.TracingConfig(debug=True), service_name="test", exporter=exporter
    )
    producer = provider.get_tracer("producer")
    subs = [h.Subscriber(), h.Subscriber()]
    try:
        async with (
            h.serving(*subs),
            h.running_dispatcher(api_client, tracer_provider=provider) as dispatcher,
        ):
            await h.create_channel(
                api_client,
                namespace,
                "ch",
                [h.subscriber_entry("u1", subs[0]), h.subscriber_entry("u2", subs[1])],
            )
            await h.served(dispatcher, namespace, "ch", 2)
            with producer.start_as_current_span("produce", kind=trace.SpanKind.PRODUCER) as root:
                carrier: dict[str, str] = {}
                tracing.inject(carrier)
                status, _, _ = await h.post(
                    f"{dispatcher.server.url}/{namespace}/ch", h.event("t-1"), headers=carrier
                )
            assert status == 202
            await waiting.until(lambda: all(s.events for s in subs))
            await waiting.until(lambda: dispatcher.fanout.pending == 0)
    finally:
        provider.shutdown()
    trace_id = root.get_span_context().trace_id
    spans = exporter.get_finished_spans()
    assert {s.context.trace_id for s in spans} == {trace_id}
    (ingress,) = [s for s in spans if s.name == "imc.receive"]
    assert ingress.parent is not None
    assert ingress.parent.span_id == root.get_span_context().span_id
    attempts = [s for s in spans if s.kind is trace.SpanKind.CLIENT]
    assert len(attempts) == 2
    for attempt in attempts:
        assert attempt.parent is not None
        assert attempt.parent.span_id == ingress.context.span_id
    sent_parents = set()
    for sub in subs:
        headers = {k.lower(): v for k, v in sub.headers[0].items()}
        version, sent_trace, parent_span, _ = headers["traceparent"].split("-")
        assert int(sent_trace, 16) == trace_id
        assert int(headers["x-b3-traceid"], 16) == trace_id
        sent_parents.add(int(parent_span, 16))
    assert sent_parents == {a.context.span_id for a in attempts}


async def test_a_long_named_channel_is_reached_by_its_shortened_service_host(
    api_client: client.ApiClient, namespace: str
) -> None:
    """A 59-character channel's Service is `kmeta.ChildName(name, "-kn-channel")` (63
    characters, md5 inside), the host its `status.address` gives senders: the dispatcher
    routes that Host to the channel, and stops once the channel is gone."""
    name = "channel-smoke-" + "x" * 45
    host = f"{names.channel_service(name)}.{namespace}.svc.cluster.local"
    assert len(host.split(".")[0]) == 63
    sub = h.Subscriber()
    async with h.serving(sub), h.running_dispatcher(api_client) as dispatcher:
        await h.create_channel(api_client, namespace, name, [h.subscriber_entry("u1", sub)])
        await h.served(dispatcher, namespace, name, 1)
        url = f"{dispatcher.server.url}/"
        assert (await h.post(url, h.event("long"), headers={"Host": host}))[0] == 202
        assert sub.ids() == ["long"]
        await client.CustomObjectsApi(api_client).delete_namespaced_custom_object(
            h.GROUP, h.VERSION, namespace, h.PLURAL, name
        )
        await waiting.until(lambda: (namespace, name) not in dispatcher.fanout.routes)
        assert (await h.post(url, h.event("gone"), headers={"Host": host}))[0] == 404
