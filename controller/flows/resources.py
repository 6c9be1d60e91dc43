"""The children of a Sequence or a Parallel and their statuses (pure).

Knative's wiring (knative/eventing `pkg/reconciler/sequence/resources`,
`pkg/reconciler/parallel/resources`, `pkg/apis/flows/v1/*_lifecycle.go`):

Sequence `S` with steps 0..n-1:
- channel `S-kn-sequence-<i>` per step, of the `channelTemplate` kind and spec;
- Subscription `S-kn-sequence-<i>` on channel i: subscriber = step i, `delivery` = step i's,
  reply = channel i+1 (a KReference), the last one's reply = `spec.reply` (if any);
- `status.address` = channel 0's address.

Parallel `P` with branches 0..n-1:
- ingress channel `P-kn-parallel`, one channel `P-kn-parallel-<i>` per branch;
- filter Subscription `P-kn-parallel-filter-<i>` on the ingress channel: with a filter,
  subscriber = the filter, reply = branch channel i (the filter's answer: the event, or
  nothing); without one, subscriber = branch channel i (every event enters);
- Subscription `P-kn-parallel-<i>` on branch channel i: subscriber = the branch's, `delivery`
  = the branch's, reply = the branch's reply, else `spec.reply`;
- `status.address` = the ingress channel's address.

Every child has a controller owner reference to its flow, so deleting the flow deletes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controller.channel import backing
from controller.framework import conditions, reconciling
from kevents import kubeapi

GROUP = "flows.knative.dev"
API_VERSION = "flows.knative.dev/v1"
SEQUENCES = kubeapi.Resource(GROUP, "v1", "sequences")
PARALLELS = kubeapi.Resource(GROUP, "v1", "parallels")
SUBSCRIPTIONS = kubeapi.Resource("messaging.knative.dev", "v1", "subscriptions")
SUBSCRIPTION_API_VERSION = "messaging.knative.dev/v1"

CHANNELS_READY = "ChannelsReady"
SUBSCRIPTIONS_READY = "SubscriptionsReady"
ADDRESSABLE = "Addressable"
CONDITION_SET = conditions.ConditionSet((CHANNELS_READY, SUBSCRIPTIONS_READY, ADDRESSABLE))
"""Both kinds' living condition set (Knative's sCondSet and pCondSet)."""

DESTINATION_FIELDS = ("ref", "uri", "CACerts", "audience")


def sequence_channel_name(sequence: str, step: int) -> str:
    return f"{sequence}-kn-sequence-{step}"


def sequence_subscription_name(sequence: str, step: int) -> str:
    return f"{sequence}-kn-sequence-{step}"


def parallel_channel_name(parallel: str) -> str:
    return f"{parallel}-kn-parallel"


def parallel_branch_channel_name(parallel: str, branch: int) -> str:
    return f"{parallel}-kn-parallel-{branch}"


def parallel_filter_subscription_name(parallel: str, branch: int) -> str:
    return f"{parallel}-kn-parallel-filter-{branch}"


def parallel_subscription_name(parallel: str, branch: int) -> str:
    return f"{parallel}-kn-parallel-{branch}"


def owner(flow: kubeapi.Json) -> dict[str, Any]:
    return reconciling.owner_reference(flow, API_VERSION, str(flow.get("kind", "")))


def channel(flow: kubeapi.Json, template: backing.TemplateDict, name: str) -> dict[str, Any]:
    """A channel of the template's kind and spec, controlled by the flow."""
    meta = flow["metadata"]
    return backing.from_template(template, name, meta["namespace"], owner(flow))


def channel_ref(template: backing.TemplateDict, name: str, namespace: str) -> dict[str, str]:
    """A Destination ref to one of the flow's channels."""
    return {
        "apiVersion": template["apiVersion"],
        "kind": template["kind"],
        "name": name,
        "namespace": namespace,
    }


def destination(raw: object) -> dict[str, Any] | None:
    """The Destination fields of `raw` (a step carries `delivery` beside them)."""
    if not isinstance(raw, dict):
        return None
    out = {k: raw[k] for k in DESTINATION_FIELDS if raw.get(k) is not None}
    return out or None


def subscription(
    flow: kubeapi.Json,
    template: backing.TemplateDict,
    name: str,
    channel_name: str,
    *,
    subscriber: dict[str, Any] | None,
    reply: dict[str, Any] | None,
    delivery: dict[str, Any] | None = None,
) -> dict[str, Any]:
    meta = flow["metadata"]
    spec: dict[str, Any] = {
        "channel": {
            "apiVersion": template["apiVersion"],
            "kind": template["kind"],
            "name": channel_name,
        }
    }
    if subscriber is not None:
        spec["subscriber"] = subscriber
    if reply is not None:
        spec["reply"] = reply
    if delivery:
        spec["delivery"] = delivery
    return {
        "apiVersion": SUBSCRIPTION_API_VERSION,
        "kind": "Subscription",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "ownerReferences": [owner(flow)],
        },
        "spec": spec,
    }


def sequence_channels(
    sequence: kubeapi.Json, template: backing.TemplateDict
) -> list[dict[str, Any]]:
    name = sequence["metadata"]["name"]
    steps = (sequence.get("spec") or {}).get("steps") or []
    return [channel(sequence, template, sequence_channel_name(name, i)) for i in range(len(steps))]


def sequence_subscriptions(
    sequence: kubeapi.Json, template: backing.TemplateDict
) -> list[dict[str, Any]]:
    meta, spec = sequence["metadata"], sequence.get("spec") or {}
    name, namespace = meta["name"], meta["namespace"]
    steps = spec.get("steps") or []
    out = []
    for i, step in enumerate(steps):
        reply: dict[str, Any] | None
        if i < len(steps) - 1:
            reply = {"ref": channel_ref(template, sequence_channel_name(name, i + 1), namespace)}
        else:
            reply = destination(spec.get("reply"))
        out.append(
            subscription(
                sequence,
                template,
                sequence_subscription_name(name, i),
                sequence_channel_name(name, i),
                subscriber=destination(step),
                reply=reply,
                delivery=step.get("delivery") if isinstance(step, dict) else None,
            )  # fmt: skip
        )
    return out


def parallel_channels(
    parallel: kubeapi.Json, template: backing.TemplateDict
) -> list[dict[str, Any]]:
    """The ingress channel first, then one per branch."""
    name = parallel["metadata"]["name"]
    branches = (parallel.get("spec") or {}).get("branches") or []
    return [channel(parallel, template, parallel_channel_name(name))] + [
        channel(parallel, template, parallel_branch_channel_name(name, i))
        for i in range(len(branches))
    ]


def parallel_subscriptions(
    parallel: kubeapi.Json, template: backing.TemplateDict
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(filter Subscription, subscriber Subscription) per branch."""
    meta, spec = parallel["metadata"], parallel.get("spec") or {}
    name, namespace = meta["name"], meta["namespace"]
    out = []
    for i, branch in enumerate(spec.get("branches") or []):
        branch_channel = {
            "ref": channel_ref(template, parallel_branch_channel_name(name, i), namespace)
        }
        filter_dest = destination(branch.get("filter"))
        filtering = subscription(
            parallel, template, parallel_filter_subscription_name(name, i),
            parallel_channel_name(name),
            subscriber=filter_dest if filter_dest is not None else branch_channel,
            reply=branch_channel if filter_dest is not None else None,
        )  # fmt: skip
        reply = destination(branch.get("reply")) or destination(spec.get("reply"))
        subscribing = subscription(
            parallel, template, parallel_subscription_name(name, i),
            parallel_branch_channel_name(name, i),
            subscriber=destination(branch.get("subscriber")), reply=reply,
            delivery=branch.get("delivery"),
        )  # fmt: skip
        out.append((filtering, subscribing))
    return out


# --- statuses ---


def object_reference(obj: kubeapi.Json) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": str(obj.get("apiVersion", "")),
        "kind": str(obj.get("kind", "")),
        "name": str(meta.get("name", "")),
        "namespace": str(meta.get("namespace", "")),
    }


def _ready_or_unknown(obj: kubeapi.Json, what: str) -> dict[str, Any]:
    ready = conditions.ready_of(obj)
    if ready is not None:
        return dict(ready)
    return {
        "type": conditions.READY,
        "status": "Unknown",
        "reason": "NoReady",
        "message": f"{what} does not have Ready condition",
    }  # no timestamp: an unchanged world writes an unchanged status


def _address_of(obj: kubeapi.Json) -> dict[str, str] | None:
    address = (obj.get("status") or {}).get("address")
    if not isinstance(address, dict) or not address.get("url"):
        return None
    out = {"url": str(address["url"])}
    if address.get("audience"):
        out["audience"] = str(address["audience"])
    return out


@dataclass(frozen=True, slots=True)
class ChildStatus:
    """One child's entry in the flow's status and whether it counts as ready."""

    entry: dict[str, Any]
    ready: bool


def readiness_entry(field: str, obj: kubeapi.Json, what: str) -> ChildStatus:
    """`{<field>: ObjectReference, ready: <its Ready, or Unknown NoReady>}` (Sequence)."""
    ready = _ready_or_unknown(obj, what)
    return ChildStatus({field: object_reference(obj), "ready": ready}, ready["status"] == "True")


def addressable_entry(obj: kubeapi.Json) -> ChildStatus:
    """A Parallel's channel entry: ready when the channel has an address (Knative's rule)."""
    if _address_of(obj) is not None:
        ready: dict[str, Any] = {"type": conditions.READY, "status": "True"}
    else:
        ready = {
            "type": conditions.READY,
            "status": "False",
            "reason": "NotAddressable",
            "message": "Channel is not addressable",
        }
    return ChildStatus(
        {"channel": object_reference(obj), "ready": ready}, ready["status"] == "True"
    )


def sequence_status(
    conds: conditions.Conditions,
    status: kubeapi.Json,
    channels: Sequence[kubeapi.Json],
    subscriptions: Sequence[kubeapi.Json],
) -> conditions.Conditions:
    """PropagateChannelStatuses + PropagateSubscriptionStatuses of Knative's Sequence."""
    chans = [readiness_entry("channel", c, "Channel") for c in channels]
    status["channelStatuses"] = [c.entry for c in chans]
    address = _address_of(channels[0]) if channels else None
    if address is None:
        status.pop("address", None)
        conds = conds.mark_unknown(ADDRESSABLE, "emptyAddress", "addressable is nil")
    else:
        status["address"] = address
        conds = conds.mark_true(ADDRESSABLE)
    if chans and all(c.ready for c in chans):
        conds = conds.mark_true(CHANNELS_READY)
    else:
        conds = conds.mark_unknown(
            CHANNELS_READY, "ChannelsNotReady", "Channels are not ready yet, or there are none"
        )
    subs = [readiness_entry("subscription", s, "Subscription") for s in subscriptions]
    status["subscriptionStatuses"] = [s.entry for s in subs]
    if subs and all(s.ready for s in subs):
        return conds.mark_true(SUBSCRIPTIONS_READY)
    return conds.mark_unknown(
        SUBSCRIPTIONS_READY,
        "SubscriptionsNotReady",
        "Subscriptions are not ready yet, or there are none",
    )


def parallel_status(
    conds: conditions.Conditions,
    status: kubeapi.Json,
    ingress: kubeapi.Json,
    branch_channels: Sequence[kubeapi.Json],
    subscriptions: Sequence[tuple[kubeapi.Json, kubeapi.Json]],
) -> conditions.Conditions:
    """PropagateChannelStatuses + PropagateSubscriptionStatuses of Knative's Parallel."""
    front = addressable_entry(ingress)
    status["ingressChannelStatus"] = front.entry
    address = _address_of(ingress)
    if address is None:
        status.pop("address", None)
        conds = conds.mark_false(ADDRESSABLE, "emptyAddress", "addressable is nil")
    else:
        status["address"] = address
        conds = conds.mark_true(ADDRESSABLE)
    chans = [addressable_entry(c) for c in branch_channels]
    subs = [
        (readiness_entry("subscription", f, "Subscription"),
         readiness_entry("subscription", s, "Subscription"))
        for f, s in subscriptions
    ]  # fmt: skip
    status["branchStatuses"] = [
        {
            "filterSubscriptionStatus": f.entry,
            "filterChannelStatus": c.entry,
            "subscriberSubscriptionStatus": s.entry,
        }
        for c, (f, s) in zip(chans, subs, strict=True)
    ]
    if front.ready and all(c.ready for c in chans):
        conds = conds.mark_true(CHANNELS_READY)
    else:
        conds = conds.mark_false(
            CHANNELS_READY, "ChannelsNotReady", "Channels are not ready yet, or there are none"
        )
    if subs and all(f.ready and s.ready for f, s in subs):
        return conds.mark_true(SUBSCRIPTIONS_READY)
    return conds.mark_false(
        SUBSCRIPTIONS_READY,
        "SubscriptionsNotReady",
        "Subscriptions are not ready yet, or there are none",
    )
