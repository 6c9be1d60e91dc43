"""A Subscription as its channel sees it (pure): the `spec.subscribers[]` entry, keyed by
the Subscription's uid, and the channel's `status.subscribers[]` report on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from controller.framework import conditions
from kevents import kubeapi

SUBSCRIPTIONS = kubeapi.Resource("messaging.knative.dev", "v1", "subscriptions")
KIND = "Subscription"
FINALIZER = "subscriptions.messaging.knative.dev"
"""Knative's finalizer name (the generated reconciler uses the resource's group-resource)."""
CHANNEL_READY = "ChannelReady"
NOT_MARKED_READY = "SubscriptionNotMarkedReadyByChannel"


class SubscriberSpecDict(TypedDict):
    """eventingduckv1.SubscriberSpec."""

    uid: str
    generation: int
    name: NotRequired[str]
    subscriberUri: NotRequired[str]
    subscriberCACerts: NotRequired[str]
    subscriberAudience: NotRequired[str]
    replyUri: NotRequired[str]
    replyCACerts: NotRequired[str]
    replyAudience: NotRequired[str]
    delivery: NotRequired[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Physical:
    """The resolved destinations (status.physicalSubscription)."""

    subscriber_uri: str | None = None
    subscriber_ca_certs: str | None = None
    subscriber_audience: str | None = None
    reply_uri: str | None = None
    reply_ca_certs: str | None = None
    reply_audience: str | None = None
    dls_uri: str | None = None
    dls_ca_certs: str | None = None
    dls_audience: str | None = None

    def status(self) -> dict[str, str]:
        pairs = {
            "subscriberUri": self.subscriber_uri,
            "subscriberCACerts": self.subscriber_ca_certs,
            "subscriberAudience": self.subscriber_audience,
            "replyUri": self.reply_uri,
            "replyCACerts": self.reply_ca_certs,
            "replyAudience": self.reply_audience,
            "deadLetterSinkUri": self.dls_uri,
            "deadLetterSinkCACerts": self.dls_ca_certs,
            "deadLetterSinkAudience": self.dls_audience,
        }
        return {k: v for k, v in pairs.items() if v}


def subscriber_spec(sub: kubeapi.Json, physical: Physical) -> SubscriberSpecDict:
    """The channel entry: resolved URIs, and the delivery spec with the dead letter sink
    replaced by its resolved URI (what the dispatcher needs, no refs)."""
    meta = sub["metadata"]
    out: SubscriberSpecDict = {
        "uid": meta["uid"],
        "generation": int(meta.get("generation", 0)),
        "name": meta["name"],
    }
    for key, value in physical.status().items():
        if key.startswith(("subscriber", "reply")):
            out[key] = value  # type: ignore[literal-required]
    delivery = dict((sub.get("spec") or {}).get("delivery") or {})
    if delivery:
        delivery.pop("deadLetterSink", None)
        if physical.dls_uri:
            dls: dict[str, str] = {"uri": physical.dls_uri}
            if physical.dls_ca_certs:
                dls["CACerts"] = physical.dls_ca_certs
            if physical.dls_audience:
                dls["audience"] = physical.dls_audience
            delivery["deadLetterSink"] = dls
        out["delivery"] = delivery
    return out


def upsert(
    subscribers: list[dict[str, Any]], entry: SubscriberSpecDict
) -> list[dict[str, Any]] | None:
    """The channel's list with `entry` in place of the same uid (or appended), or None if
    that changes nothing."""
    out: list[dict[str, Any]] = []
    found = False
    for item in subscribers:
        if item.get("uid") != entry["uid"]:
            out.append(item)
        elif not found:
            found = True
            out.append(dict(entry))
    if not found:
        out.append(dict(entry))
    return None if out == subscribers else out


def remove(subscribers: list[dict[str, Any]], uid: str) -> list[dict[str, Any]] | None:
    """The list without `uid`, or None if it was not there."""
    rest = [s for s in subscribers if s.get("uid") != uid]
    return None if len(rest) == len(subscribers) else rest


def channel_ready(
    conds: conditions.Conditions, channel: kubeapi.Json, sub: kubeapi.Json
) -> conditions.Conditions:
    """ChannelReady from the channel's `status.subscribers` entry for this uid+generation."""
    meta = sub["metadata"]
    for reported in (channel.get("status") or {}).get("subscribers") or []:
        if reported.get("uid") != meta["uid"]:
            continue
        if int(reported.get("observedGeneration", 0)) != int(meta.get("generation", 0)):
            continue
        ready = reported.get("ready")
        if ready == "True":
            return conds.mark_true(CHANNEL_READY)
        if ready == "False":
            message = "Subscription marked by Channel as False"
            if reported.get("message"):
                message += f": {reported['message']}"
            return conds.mark_false(CHANNEL_READY, NOT_MARKED_READY, message)
        return conds.mark_unknown(
            CHANNEL_READY, NOT_MARKED_READY, "Subscription marked by Channel as Unknown"
        )
    channel_name = channel["metadata"]["name"]
    return conds.mark_unknown(
        CHANNEL_READY,
        NOT_MARKED_READY,
        f'Failed to get subscription status: subscription "{meta["name"]}" not present in '
        f'channel "{channel_name}" subscriber\'s list',
    )
