"""The broker in the dispatcher without sockets: TTL, Trigger table, routing, the filter step."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from opentelemetry import context as otel_context
from prometheus_client import CollectorRegistry

from dispatcher import channels, dispatch, fanout, lane, routing
from dispatcher import metrics as dispatcher_metrics
from dispatcher.broker import ingress as broker_ingress
from dispatcher.broker import triggers, ttl
from kevents import cloudevent, delivery, errors, rawevent

FILTER = "http://broker-filter.kevents-system.svc.cluster.local/triggers"
INGRESS = "http://broker-ingress.kevents-system.svc.cluster.local/ns/default"


def _raw(structured: bool = False, **extensions: object) -> rawevent.RawEvent:
    event = cloudevent.build("dev.t", "/s", {"a": 1}, id="e1", extensions=extensions)
    encoding = cloudevent.Encoding.STRUCTURED if structured else cloudevent.Encoding.BINARY
    message = cloudevent.encode(event, encoding)
    return rawevent.receive(dict(message.headers), message.body)


# -- TTL -------------------------------------------------------------------------------------


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_ingress_gives_an_event_without_ttl_the_maximum(structured: bool) -> None:
    admitted, value = ttl.admit(_raw(structured), 255)
    assert value == 255
    assert ttl.read(admitted) == 255
    if not structured:
        assert isinstance(admitted, rawevent.RawEvent)
        assert admitted.headers["ce-knativebrokerttl"] == "255"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("7", 7), ("255", 255), ("1000", 255)],
    ids=["kept", "at-maximum", "lowered-to-maximum"],
)
def test_ingress_keeps_a_ttl_up_to_the_maximum(given: str, expected: int) -> None:
    admitted, value = ttl.admit(_raw(knativebrokerttl=given), 255)
    assert (value, ttl.read(admitted)) == (expected, expected)


@pytest.mark.parametrize("given", ["0", "-3", "many", "true"], ids=["zero", "neg", "word", "bool"])
def test_ingress_refuses_an_exhausted_or_invalid_ttl(given: str) -> None:
    with pytest.raises(ttl.TTLError, match="knativebrokerttl"):
        ttl.admit(_raw(knativebrokerttl=given), 255)


def test_broker_prepare_turns_a_ttl_problem_into_a_400_reason() -> None:
    ingress = broker_ingress.BrokerIngress(_fanout(), max_ttl=10)
    with pytest.raises(errors.InvalidEventError, match="knativebrokerttl is 0"):
        ingress.prepare(_raw(knativebrokerttl="0"))
    assert ttl.read(ingress.prepare(_raw())) == 10


def test_a_reply_is_one_hop_lower_and_dropped_when_nothing_is_left() -> None:
    reply = cloudevent.build("dev.reply", "/r", id="r1")
    onward = ttl.for_reply(_raw(knativebrokerttl="3"), reply)
    assert onward is not None and ttl.read(onward) == 2
    assert ttl.for_reply(_raw(knativebrokerttl="1"), reply) is None


# -- Trigger table ----------------------------------------------------------------------------


def _trigger_obj(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "t1", "uid": "u1"},
        "spec": {"broker": "default", **spec},
        "status": {"subscriberUri": "http://display.ns.svc.cluster.local/"},
    }


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (f"{FILTER}/ns/t1/u1", triggers.FilterKey("ns", "t1", "u1")),
        ("http://broker-filter.other/triggers/a/b/c", triggers.FilterKey("a", "b", "c")),
        (f"{FILTER}/ns/t1", None),
        ("http://display.ns.svc.cluster.local/triggers/ns/t1/u1", None),
        ("http://sub.example.com/", None),
    ],
    ids=["filter", "any-system-ns", "short-path", "other-host", "plain"],
)
def test_filter_uris_are_recognised(uri: str, expected: triggers.FilterKey | None) -> None:
    assert triggers.filter_key(uri) == expected


def test_a_trigger_parses_to_its_filter_and_subscriber() -> None:
    found = triggers.parse(_trigger_obj(filter={"attributes": {"type": "dev.a"}}))
    assert (found.namespace, found.name, found.uid, found.broker) == ("ns", "t1", "u1", "default")
    assert found.subscriber_uri == "http://display.ns.svc.cluster.local/"
    assert found.problem == ""
    assert found.filter.matches({"type": "dev.a"})
    assert not found.filter.matches({"type": "dev.b"})


def test_filters_win_over_filter_attributes() -> None:
    found = triggers.parse(
        _trigger_obj(filter={"attributes": {"type": "dev.a"}}, filters=[{"prefix": {"type": "x."}}])
    )
    assert found.filter.matches({"type": "x.y"})
    assert not found.filter.matches({"type": "dev.a"})


def test_an_invalid_filter_or_unresolved_subscriber_is_a_problem() -> None:
    bad = triggers.parse(_trigger_obj(filters=[{"cesql": "type ="}]))
    assert bad.problem.startswith("invalid filter: spec.filters[0].cesql")
    assert not bad.filter.matches({"type": "anything"})
    obj = _trigger_obj()
    del obj["status"]
    assert "not resolved" in triggers.parse(obj).problem


# -- routing -----------------------------------------------------------------------------------


class RecordingSender:
    """The forwarder seam: records each send and answers from a script."""

    def __init__(self, answers: Mapping[str, list[delivery.DeliveryResult]]) -> None:
        self.answers = {url: list(results) for url, results in answers.items()}
        self.sent: list[tuple[str, Any]] = []

    async def send(self, event: Any, url: str, **_: Any) -> delivery.DeliveryResult:
        self.sent.append((url, event))
        script = self.answers.get(url)
        if script:
            return script.pop(0)
        return delivery.DeliveryResult(status=202, duration=0.001, attempts=1)


def _fanout(courier: Any = None) -> fanout.Fanout:
    return fanout.Fanout(
        courier or dispatch.Courier(RecordingSender({}), _metrics()),
        _metrics(),
        queue_size=10,
        queue_bytes=10_000,
        concurrency=1,
        backlog=1,
    )


def _metrics() -> dispatcher_metrics.DispatcherMetrics:
    return dispatcher_metrics.DispatcherMetrics(CollectorRegistry())


def _trigger_channel(name: str = "default-kne-trigger", brokered: bool = True) -> dict[str, Any]:
    labels = {channels.BROKER_LABEL: "default"}
    if brokered:
        labels[channels.BROKER_EVERYTHING_LABEL] = "true"
    return {
        "metadata": {"namespace": "ns", "name": name, "labels": labels},
        "spec": {
            "subscribers": [
                {"uid": "s1", "generation": 1, "subscriberUri": f"{FILTER}/ns/t1/u1",
                 "replyUri": INGRESS},
            ]
        },
    }  # fmt: skip


def test_a_labelled_trigger_channel_routes_its_broker() -> None:
    fan = _fanout()
    ingress = broker_ingress.BrokerIngress(fan)
    with pytest.raises(routing.RoutingError) as missing:
        ingress.lookup("h", "/ns/default")
    assert missing.value.status == 404
    channel = channels.parse(_trigger_channel())
    assert channel.broker == "default"
    assert channel.targets[0].trigger == triggers.FilterKey("ns", "t1", "u1")
    fan.update(channel)
    assert ingress.lookup("h", "/ns/default").channel.key == ("ns", "default-kne-trigger")
    fan.remove(("ns", "default-kne-trigger"))
    with pytest.raises(routing.RoutingError):
        ingress.lookup("h", "/ns/default")


def test_only_brokerEverything_channels_route_a_broker() -> None:
    fan = _fanout()
    fan.update(channels.parse(_trigger_channel(brokered=False)))
    assert fan.brokers == {}


@pytest.mark.parametrize(
    ("path", "status"),
    [("/", 404), ("", 404), ("/ns", 400), ("/ns/default/extra", 400), ("/ns/other", 404)],
    ids=["root", "empty", "one-segment", "three-segments", "unknown"],
)
def test_broker_paths_answer_as_knative(path: str, status: int) -> None:
    fan = _fanout()
    fan.update(channels.parse(_trigger_channel()))
    with pytest.raises(routing.RoutingError) as answer:
        broker_ingress.BrokerIngress(fan).lookup("broker-ingress", path)
    assert answer.value.status == status


# -- the filter step of a delivery --------------------------------------------------------------

SUBSCRIBER = "http://display.ns.svc.cluster.local/"
DLS = "http://dls.ns.svc.cluster.local/"


def _target(dead_letter: str = DLS) -> channels.Target:
    return channels.target(
        {"uid": "s1", "generation": 1, "subscriberUri": f"{FILTER}/ns/t1/u1",
         "replyUri": INGRESS, "delivery": {"deadLetterSink": {"uri": dead_letter}}}
        if dead_letter
        else {"uid": "s1", "generation": 1, "subscriberUri": f"{FILTER}/ns/t1/u1",
              "replyUri": INGRESS},
        {},
        "",
    )  # fmt: skip


def _envelope(event: rawevent.RawEvent) -> lane.Envelope:
    return lane.Envelope(event, {"prefer": "reply"}, otel_context.Context(), "ns", 10, 1)


def _reply_result(ttl_value: str = "") -> delivery.DeliveryResult:
    reply = cloudevent.build("dev.reply", "/r", id="r1")
    message = cloudevent.encode(reply)
    return delivery.DeliveryResult(
        status=200, duration=0.001, attempts=1, headers=dict(message.headers), body=message.body
    )


async def _deliver(
    event: rawevent.RawEvent,
    answers: Mapping[str, list[delivery.DeliveryResult]] | None = None,
    *,
    table: dict[tuple[str, str], triggers.Trigger] | None = None,
    target: channels.Target | None = None,
) -> tuple[RecordingSender, dispatcher_metrics.DispatcherMetrics]:
    recorder = RecordingSender(answers or {})
    metrics = _metrics()
    if table is None:
        table = {
            ("ns", "t1"): triggers.parse(_trigger_obj(filter={"attributes": {"type": "dev.t"}}))
        }
    courier = dispatch.Courier(recorder, metrics, trigger_table=table, trigger_wait=0.3)
    await courier.deliver(target or _target(), _envelope(event))
    return recorder, metrics


def _value(metrics: dispatcher_metrics.DispatcherMetrics, name: str, **labels: str) -> float:
    found = metrics.filtered if name == "filtered" else metrics.replies_dropped
    return float(found.labels(**labels)._value.get())


async def test_a_matching_event_goes_to_the_triggers_subscriber() -> None:
    event = ttl.admit(_raw(), 255)[0]
    assert isinstance(event, rawevent.RawEvent)
    recorder, metrics = await _deliver(event)
    assert [url for url, _ in recorder.sent] == [SUBSCRIBER]
    sent = recorder.sent[0][1]
    assert isinstance(sent, rawevent.RawEvent)
    assert sent.body is event.body  # the received bytes, not a copy
    assert "ce-knativebrokerttl" in event.headers
    assert "ce-knativebrokerttl" not in sent.headers  # Knative's filter removes the TTL
    assert {**sent.headers, "ce-knativebrokerttl": "255"} == event.headers
    assert _value(metrics, "filtered", result="matched") == 1


async def test_a_non_matching_event_is_not_delivered() -> None:
    table = {("ns", "t1"): triggers.parse(_trigger_obj(filter={"attributes": {"type": "other"}}))}
    recorder, metrics = await _deliver(_raw(), table=table)
    assert recorder.sent == []
    assert _value(metrics, "filtered", result="unmatched") == 1


async def test_a_reply_goes_back_into_the_broker_one_hop_lower() -> None:
    recorder, _ = await _deliver(_raw(knativebrokerttl="5"), {SUBSCRIBER: [_reply_result()]})
    assert [url for url, _ in recorder.sent] == [SUBSCRIBER, INGRESS]
    sent_reply = recorder.sent[1][1]
    assert sent_reply.get_id() == "r1"
    assert ttl.read(sent_reply) == 4


async def test_a_reply_with_no_ttl_left_is_dropped_and_counted() -> None:
    recorder, metrics = await _deliver(_raw(knativebrokerttl="1"), {SUBSCRIBER: [_reply_result()]})
    assert [url for url, _ in recorder.sent] == [SUBSCRIBER]
    assert _value(metrics, "replies_dropped", reason="ttl_exhausted") == 1


async def test_a_failed_delivery_dead_letters_with_the_triggers_subscriber_as_destination() -> None:
    failed = delivery.DeliveryResult(status=503, duration=0.01, attempts=3, body=b"down")
    recorder, _ = await _deliver(_raw(), {SUBSCRIBER: [failed]})
    assert [url for url, _ in recorder.sent] == [SUBSCRIBER, DLS]
    dead = recorder.sent[1][1].get_attributes()
    assert dead["knativeerrordest"] == SUBSCRIBER
    assert dead["knativeerrorcode"] == "503"
    assert dead["knativeerrordata"] == "ZG93bg=="


async def test_an_unknown_trigger_is_a_failure_after_waiting_not_a_silent_drop() -> None:
    recorder, metrics = await _deliver(_raw(), table={})
    assert [url for url, _ in recorder.sent] == [DLS]
    dead = recorder.sent[0][1].get_attributes()
    assert dead["knativeerrordest"] == f"{FILTER}/ns/t1/u1"
    assert dead["knativeerrorcode"] == "500"
    assert _value(metrics, "filtered", result="not_servable") == 1


async def test_a_trigger_made_anew_under_the_same_name_is_not_the_subscribed_one() -> None:
    obj = _trigger_obj()
    obj["metadata"]["uid"] = "u2"
    recorder, metrics = await _deliver(
        _raw(), table={("ns", "t1"): triggers.parse(obj)}, target=_target(dead_letter="")
    )
    assert recorder.sent == []
    assert metrics.lost.labels("retries_exhausted")._value.get() == 1


# -- admission on a broker's channel ------------------------------------------------------------


class BlockingSender(RecordingSender):
    """Every send waits until released."""

    def __init__(self) -> None:
        super().__init__({})
        self.release = asyncio.Event()

    async def send(self, event: Any, url: str, **kwargs: Any) -> delivery.DeliveryResult:
        await self.release.wait()
        return await super().send(event, url, **kwargs)


def _two_triggers() -> dict[tuple[str, str], triggers.Trigger]:
    table = {}
    for name, kind in (("t1", "dev.a"), ("t2", "dev.b")):
        obj = _trigger_obj(filter={"attributes": {"type": kind}})
        obj["metadata"].update(name=name, uid=f"u-{name}")
        obj["status"]["subscriberUri"] = f"http://{name}.ns.svc.cluster.local/"
        table[("ns", name)] = triggers.parse(obj)
    return table


async def test_a_full_triggers_lane_refuses_only_events_that_trigger_wants() -> None:
    blocking = BlockingSender()
    metrics = _metrics()
    courier = dispatch.Courier(blocking, metrics, trigger_table=_two_triggers())
    fan = fanout.Fanout(
        courier, metrics, queue_size=100, queue_bytes=100_000, concurrency=1, backlog=1
    )
    channel = _trigger_channel()
    channel["spec"]["subscribers"] = [
        {"uid": f"s-{n}", "generation": 1, "replyUri": INGRESS,
         "subscriberUri": f"{FILTER}/ns/{n}/u-{n}"}
        for n in ("t1", "t2")
    ]  # fmt: skip
    fan.update(channels.parse(channel))
    route = fan.brokers[("ns", "default")]
    task = asyncio.create_task(fan.run())
    await fan.wait_started()
    try:

        def submit(kind: str, i: int) -> None:
            event = cloudevent.build(kind, "/s", id=f"{kind}-{i}")
            fan.submit(route, event, {}, otel_context.Context(), 10)

        submit("dev.a", 1)  # t1 delivering
        submit("dev.a", 2)  # t1 backlog full
        with pytest.raises(errors.QueueFullError):
            submit("dev.a", 3)
        for i in range(2):  # t1 is full, but these are t2's alone
            submit("dev.b", i)
        submit("dev.c", 1)  # no Trigger wants it: accepted, nothing queued
        assert fan.pending == 4
        assert metrics.filtered.labels("unmatched")._value.get() == 2 + 2 + 2
        blocking.release.set()
        await asyncio.wait_for(fan.drain(5), 5)
        delivered = sorted((url, e.get_id()) for url, e in blocking.sent)
        assert delivered == [
            ("http://t1.ns.svc.cluster.local/", "dev.a-1"),
            ("http://t1.ns.svc.cluster.local/", "dev.a-2"),
            ("http://t2.ns.svc.cluster.local/", "dev.b-0"),
            ("http://t2.ns.svc.cluster.local/", "dev.b-1"),
        ]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
