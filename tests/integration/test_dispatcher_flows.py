"""The data path of a Sequence: its channels wired as the Sequence's Subscriptions write them
(channel i -> step i, reply -> channel i+1, last reply -> the final sink), served by a real
dispatcher in this process, loopback steps.

What a Sequence's user notices: the steps run in order on the replies; a step answering
without an event (202/204, no body) ends the chain for that event without any error or dead
letter; a failing step is retried per its delivery, then dead-lettered with the error
extensions while later events still flow; every step sees the producer's trace.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from controller.flows import resources
from kevents import cloudevent, tracing
from tests import cluster, waiting
from tests.integration import dispatcher_harness as h

pytestmark = pytest.mark.cluster

Decide = Callable[[cloudevent.CloudEvent], int]


@pytest.fixture(autouse=True)
def _crd(kube: cluster.Kube) -> None:
    h.ensure_crd(kube)


def step(text: str, decide: Decide | None = None) -> h.Subscriber:
    """Answers with the event, `text` appended to its data and `step<text>` set; or, when
    `decide` says another status, with that status and no event."""

    async def respond(request: web.Request, event: cloudevent.CloudEvent) -> web.Response:
        status = decide(event) if decide is not None else 200
        if status != 200:
            return web.Response(status=status)
        attributes = dict(event.get_attributes())
        attributes["laststep"] = text
        data = event.get_data() or b""
        data = (data.encode() if isinstance(data, str) else bytes(data)) + text.encode()  # type: ignore[arg-type]
        message = cloudevent.encode(cloudevent.CloudEvent(attributes, data))
        return web.Response(status=200, body=message.body, headers=dict(message.headers))

    return h.Subscriber(respond=respond)


async def wire(
    api: client.ApiClient, ingress: str, namespace: str, steps: list[h.Subscriber],
    final: h.Subscriber, deliveries: dict[int, dict[str, Any]],
) -> str:  # fmt: skip
    """The Sequence's channels; returns the address of the first."""
    names = [resources.sequence_channel_name("seq", i) for i in range(len(steps))]
    for i, (name, sub) in enumerate(zip(names, steps, strict=True)):
        entry: dict[str, Any] = {"uid": f"u{i}", "generation": 1, "subscriberUri": sub.url,
                                 "replyUri": f"{ingress}/{namespace}/{names[i + 1]}"
                                 if i + 1 < len(names) else final.url}  # fmt: skip
        if i in deliveries:
            entry["delivery"] = deliveries[i]
        await h.create_channel(api, namespace, name, [entry])
    return f"{ingress}/{namespace}/{names[0]}"


def text_event(event_id: str, **extensions: str) -> cloudevent.CloudEvent:
    return cloudevent.build("dev.example.build", "/tests/flows", b"build", id=event_id,
                            datacontenttype="text/plain", extensions=extensions)  # fmt: skip


@pytest.mark.parametrize("status", [202, 204], ids=["202", "204"])
async def test_a_step_answering_without_an_event_ends_the_chain_without_error(
    api_client: client.ApiClient, namespace: str, status: int
) -> None:
    def middle(event: cloudevent.CloudEvent) -> int:
        return status if event.get_attributes().get("stop") == "yes" else 200

    steps = [step(" a"), step(" b", middle), step(" c")]
    final, dls = h.Subscriber(), h.Subscriber()
    exporter = InMemorySpanExporter()
    provider = tracing.make_provider(
        tracing.TracingConfig(debug=True), service_name="test", exporter=exporter
    )
    async with (
        h.serving(*steps, final, dls),
        h.running_dispatcher(api_client, tracer_provider=provider) as d,
    ):
        first = await wire(
            api_client, d.server.url, namespace, steps, final,
            {1: {"retry": 3, "backoffDelay": "PT0.01S", "deadLetterSink": {"uri": dls.url}}},
        )  # fmt: skip
        for i in range(3):
            await h.served(d, namespace, resources.sequence_channel_name("seq", i), 1)
        trace_id = secrets.token_hex(16)
        traceparent = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
        stopped = await h.post(first, text_event("stop", stop="yes"), headers=traceparent)
        assert stopped[0] == 202
        went = await h.post(first, text_event("go"), headers=traceparent)
        assert went[0] == 202
        await waiting.until(lambda: final.ids() == ["go"])
        assert final.events[0].get_data() in (b"build a b c", "build a b c")
        assert final.events[0].get_attributes()["laststep"] == " c"
        # The 204/202 ended "stop" at the middle step: once, no retry, nothing dead-lettered.
        assert steps[1].ids() == ["stop", "go"]
        assert steps[2].ids() == ["go"]
        assert dls.events == []
        # One trace per event: every step and the sink were called in the producer's trace.
        for sub in (*steps, final):
            seen = {
                {k.lower(): v for k, v in hdrs.items()}.get("traceparent", "-").split("-")[1]
                for hdrs in sub.headers
            }
            assert seen == {trace_id}
    provider.shutdown()
    # The dispatcher's own spans (each channel's ingress, each delivery) are in that trace too.
    spans = exporter.get_finished_spans()
    assert spans and {format(s.context.trace_id, "032x") for s in spans} == {trace_id}


async def test_a_failing_step_is_retried_then_dead_lettered_and_later_events_flow(
    api_client: client.ApiClient, namespace: str
) -> None:
    def middle(event: cloudevent.CloudEvent) -> int:
        return 500 if event.get_attributes().get("crash") == "yes" else 200

    steps = [step(" a"), step(" b", middle), step(" c")]
    final, dls = h.Subscriber(), h.Subscriber()
    async with h.serving(*steps, final, dls), h.running_dispatcher(api_client) as d:
        first = await wire(
            api_client, d.server.url, namespace, steps, final,
            {1: {"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT0.01S",
                 "deadLetterSink": {"uri": dls.url}}},
        )  # fmt: skip
        for i in range(3):
            await h.served(d, namespace, resources.sequence_channel_name("seq", i), 1)
        assert (await h.post(first, text_event("crash", crash="yes")))[0] == 202
        assert (await h.post(first, text_event("later")))[0] == 202
        await waiting.until(lambda: final.ids() == ["later"])
        assert steps[1].ids() == ["crash", "crash", "crash", "later"]
        assert dls.ids() == ["crash"]
        dead = dls.events[0]
        assert dead.get_data() in (b"build a", "build a")  # what the failing step was given
        assert dead.get_attributes()["knativeerrorcode"] == "500"
        assert dead.get_attributes()["knativeerrordest"] == steps[1].url
        assert steps[2].ids() == ["later"]
