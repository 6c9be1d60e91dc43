"""InMemoryChannel objects -> the values the dispatcher serves (pure, no I/O).

`parse()` turns a raw `inmemorychannels.messaging.knative.dev/v1` object into a frozen
`Channel` with one `Target` per `spec.subscribers[]` entry as the controller wrote it:
absolute `subscriberUri`/`replyUri`, and `delivery.deadLetterSink.uri` already resolved.
A subscriber without its own `delivery` inherits the channel's `spec.delivery` (whose dead
letter sink may be given resolved in `status.deadLetterSinkUri`).

A channel labelled as a Broker's trigger channel routes that broker's ingress traffic, and
its subscribers pointing at the broker filter are Triggers (`dispatcher.broker.triggers`).

A subscriber whose entry has a problem (bad duration, relative URL) is still served where
possible, but reported `ready: "False"` with the problem as message (`statuses()`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypedDict, cast

from dispatcher.broker import triggers
from kevents import cloudevent, errors, retries

Key = tuple[str, str]
"""(namespace, name) of a channel: the routing key."""
BROKER_LABEL = "eventing.knative.dev/broker"
BROKER_EVERYTHING_LABEL = "eventing.knative.dev/brokerEverything"
"""Labels of a Broker's trigger channel (`<broker>-kne-trigger`), as Knative sets them."""
ASYNC_HANDLER_ANNOTATION = "messaging.knative.dev/async-handler"
"""Knative's InMemoryChannel annotation: "true" acknowledges events before delivery
(`knative/eventing:pkg/reconciler/inmemorychannel/dispatcher/inmemorychannel.go`)."""


class Destination(TypedDict, total=False):
    ref: dict[str, str]
    uri: str
    CACerts: str
    audience: str


class SubscriberSpec(TypedDict, total=False):
    """One `spec.subscribers[]` entry (knative/eventing:pkg/apis/duck/v1/subscribable_types.go)."""

    uid: str
    generation: int
    name: str
    subscriberUri: str
    replyUri: str
    delivery: dict[str, Any]


class SubscriberStatus(TypedDict, total=False):
    """One `status.subscribers[]` entry, as the Subscription reconciler reads it."""

    uid: str
    observedGeneration: int
    ready: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """One subscriber as served: where to send, where replies and failures go, and how."""

    uid: str
    generation: int
    subscriber_uri: str
    """Empty when the Subscription has only a reply: events then go straight to the reply."""
    reply_uri: str
    dead_letter_uri: str
    policy: retries.RetryPolicy
    encoding: cloudevent.Encoding | None = None
    """`delivery.format`; None = binary, Knative's default."""
    problem: str = ""
    """Why this subscriber is not (fully) served; empty when it is."""
    trigger: triggers.FilterKey | None = None
    """Set when `subscriber_uri` is the broker filter's URI for a Trigger: events are
    filtered and delivered to the Trigger's subscriber in-process (dispatch.Courier)."""

    @property
    def servable(self) -> bool:
        return bool(self.subscriber_uri or self.reply_uri)


@dataclasses.dataclass(frozen=True, slots=True)
class Channel:
    namespace: str
    name: str
    targets: tuple[Target, ...]
    reported: tuple[SubscriberStatus, ...]
    """`status.subscribers` as last seen on the object, to patch only on a difference."""
    broker: str = ""
    """The Broker (same namespace) whose trigger channel this is; empty for other channels."""
    async_handler: bool = False
    """`messaging.knative.dev/async-handler: "true"`: answer 202 as soon as the event is
    accepted. By default (False, Knative's) the ingress answers only after every subscriber
    answered or the event was dead-lettered, so nothing acknowledged is lost in a crash."""

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _absolute(url: object) -> bool:
    return isinstance(url, str) and url.startswith(("http://", "https://")) and len(url) > 8


def _dead_letter(delivery: dict[str, Any], fallback: str) -> tuple[str, str]:
    """(uri, problem) of a delivery's dead-letter sink."""
    sink = delivery.get("deadLetterSink")
    if not isinstance(sink, dict):
        return "", ""
    uri = sink.get("uri")
    if _absolute(uri):
        return str(uri), ""
    if fallback:
        return fallback, ""
    return "", "deadLetterSink has no resolved absolute uri; failed events are dropped"


def _policy(delivery: dict[str, Any]) -> tuple[retries.RetryPolicy, str]:
    try:
        return retries.RetryPolicy.from_delivery_spec(delivery), ""
    except errors.ConfigError as exc:
        return retries.RetryPolicy(), "; ".join(exc.problems) + " (delivering without retries)"


def _encoding(delivery: dict[str, Any]) -> cloudevent.Encoding | None:
    value = delivery.get("format")
    if value == cloudevent.Encoding.STRUCTURED.value:
        return cloudevent.Encoding.STRUCTURED
    if value == cloudevent.Encoding.BINARY.value:
        return cloudevent.Encoding.BINARY
    return None


def target(spec: SubscriberSpec, channel_delivery: dict[str, Any], channel_dls: str) -> Target:
    """The served form of one subscriber entry."""
    problems: list[str] = []
    own = spec.get("delivery")
    delivery = own if isinstance(own, dict) else channel_delivery
    dls, problem = _dead_letter(delivery, "" if isinstance(own, dict) else channel_dls)
    if problem:
        problems.append(problem)
    policy, problem = _policy(delivery)
    if problem:
        problems.append(problem)
    urls = {"subscriberUri": spec.get("subscriberUri", ""), "replyUri": spec.get("replyUri", "")}
    for field, url in list(urls.items()):
        if url and not _absolute(url):
            problems.append(f"{field} {url!r} is not an absolute http(s) URL")
            urls[field] = ""
    if not urls["subscriberUri"] and not urls["replyUri"]:
        problems.append("neither subscriberUri nor replyUri is set")
    generation = spec.get("generation", 0)
    return Target(
        uid=str(spec.get("uid", "")),
        generation=generation if isinstance(generation, int) else 0,
        subscriber_uri=str(urls["subscriberUri"]),
        reply_uri=str(urls["replyUri"]),
        dead_letter_uri=dls,
        policy=policy,
        encoding=_encoding(delivery),
        problem="; ".join(problems),
        trigger=triggers.filter_key(urls["subscriberUri"]) if urls["subscriberUri"] else None,
    )


def parse(obj: dict[str, Any]) -> Channel:
    """The channel served for an InMemoryChannel object."""
    namespace, name = key_of(obj)
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    channel_delivery = spec.get("delivery")
    if not isinstance(channel_delivery, dict):
        channel_delivery = {}
    channel_dls = status.get("deadLetterSinkUri", "")
    channel_dls = channel_dls if _absolute(channel_dls) else ""
    entries = [
        cast(SubscriberSpec, entry)
        for entry in spec.get("subscribers") or []
        if isinstance(entry, dict) and entry.get("uid")
    ]
    targets = tuple(target(entry, channel_delivery, channel_dls) for entry in entries)
    reported: tuple[SubscriberStatus, ...] = tuple(
        cast(SubscriberStatus, entry)
        for entry in status.get("subscribers") or []
        if isinstance(entry, dict)
    )
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    broker = ""
    if labels.get(BROKER_EVERYTHING_LABEL) == "true":
        broker = str(labels.get(BROKER_LABEL, ""))
    annotations = meta.get("annotations") or {}
    async_handler = annotations.get(ASYNC_HANDLER_ANNOTATION) == "true"
    return Channel(namespace, name, targets, reported, broker, async_handler)


def statuses(channel: Channel) -> list[SubscriberStatus]:
    """`status.subscribers` the dispatcher reports for `channel` (Knative's shape)."""
    out: list[SubscriberStatus] = []
    for t in channel.targets:
        entry: SubscriberStatus = {"uid": t.uid, "observedGeneration": t.generation}
        if t.problem:
            entry["ready"] = "False"
            entry["message"] = t.problem
        else:
            entry["ready"] = "True"
        out.append(entry)
    return out


def needs_report(channel: Channel) -> bool:
    """Whether the object's `status.subscribers` differs from what the dispatcher serves."""
    return list(channel.reported) != statuses(channel)
