"""Which kinds convert, field by field, and `convert(object, desired_api_version)`.

- Broker: v1alpha1 `channelTemplateSpec` (and the older `channelTemplate`) has no v1 home: it
  is kept in the annotation, and the broker uses the channel its `config` names (default
  `config-br-defaults`, InMemoryChannel); v1 `config` is kept in the annotation at v1alpha1.
- Trigger: `broker` (v1alpha1 default `default`), `filter` (`sourceAndType` or `attributes`
  -> `attributes`), `subscriber`; v1 `brokerRef` and `filters` kept at v1alpha1.
- InMemoryChannel, Channel: `subscribable.subscribers[]` <-> `subscribers[]`; Channel
  `channelTemplate` as it is.
- Subscription: `channel` (ObjectReference -> KReference), `subscriber`, `reply`
  (`reply.channel` -> `reply.ref`).
- Every kind: `delivery` (its dead letter sink as a destination).

Status (written at v1 only): `subscriberUri` -> `subscriberURI` (Trigger), the
`physicalSubscription` URIs likewise, channel `subscribers` -> `subscribableStatus.subscribers`,
`address.hostname` added.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.conversion import fields, shapes
from controller.conversion.fields import Field

V1ALPHA1 = "v1alpha1"
V1 = "v1"


class ConversionError(ValueError):
    """The object cannot be converted (unknown kind or version); the review fails."""


@dataclass(frozen=True, slots=True)
class Kind:
    group: str
    kind: str
    plural: str
    spec: Sequence[Field]
    status: Mapping[str, str] = field(default_factory=dict)
    """v1 status key (dotted: one level) -> its v1alpha1 name."""

    @property
    def crd(self) -> str:
        return f"{self.plural}.{self.group}"


_DELIVERY = Field("delivery", "delivery", shapes.delivery_up, shapes.delivery_down)
_SUBSCRIBABLE = Field(
    "subscribable", "subscribers", shapes.subscribable_up, shapes.subscribable_down
)
_CHANNEL_STATUS = {"subscribers": "subscribableStatus.subscribers"}

KINDS = (
    Kind("eventing.knative.dev", "Broker", "brokers", [
        Field("channelTemplateSpec", None),
        Field("channelTemplate", None),
        Field(None, "config"),
        _DELIVERY,
    ]),
    Kind("eventing.knative.dev", "Trigger", "triggers", [
        Field("filter", "filter", shapes.filter_up, shapes.filter_down),
        Field("subscriber", "subscriber", shapes.destination_up, shapes.destination_down),
        Field(None, "brokerRef"),
        Field(None, "filters"),
        _DELIVERY,
    ], {"subscriberUri": "subscriberURI"}),
    Kind("messaging.knative.dev", "InMemoryChannel", "inmemorychannels",
         [_SUBSCRIBABLE, _DELIVERY], _CHANNEL_STATUS),
    Kind("messaging.knative.dev", "Channel", "channels", [
        _SUBSCRIBABLE,
        _DELIVERY,
    ], _CHANNEL_STATUS),
    Kind("messaging.knative.dev", "Subscription", "subscriptions", [
        Field("channel", "channel", shapes.reference_up, shapes.reference_down),
        Field("subscriber", "subscriber", shapes.destination_up, shapes.destination_down),
        Field("reply", "reply", shapes.reply_up, shapes.destination_down),
        _DELIVERY,
    ], {
        "physicalSubscription.subscriberUri": "physicalSubscription.subscriberURI",
        "physicalSubscription.replyUri": "physicalSubscription.replyURI",
        "physicalSubscription.deadLetterSinkUri": "physicalSubscription.deadLetterSinkURI",
    }),
)  # fmt: skip
BY_KIND = {(k.group, k.kind): k for k in KINDS}
CRDS = tuple(k.crd for k in KINDS)
"""The CRDs served at v1alpha1 through this webhook (their caBundle is ours to keep)."""


def _split(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def convert(obj: Mapping[str, Any], desired: str) -> dict[str, Any]:
    """`obj` at `desired` (`group/version`), or ConversionError."""
    group, version = _split(str(obj.get("apiVersion", "")))
    want_group, want = _split(desired)
    kind = BY_KIND.get((group, str(obj.get("kind", ""))))
    if kind is None or want_group != group:
        raise ConversionError(f"cannot convert {obj.get('apiVersion')} {obj.get('kind')} "
                              f"to {desired}")  # fmt: skip
    if {version, want} - {V1, V1ALPHA1}:
        raise ConversionError(f"{kind.kind} has versions v1alpha1 and v1, not {version} "
                              f"-> {want}")  # fmt: skip
    out = copy.deepcopy(dict(obj))
    out["apiVersion"] = desired
    if version == want:
        return out
    direction = fields.Direction.UP if want == V1 else fields.Direction.DOWN
    meta = out.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    reads, writes = (
        (fields.V1ALPHA1_MEMO, fields.V1_MEMO)
        if direction is fields.Direction.UP
        else (fields.V1_MEMO, fields.V1ALPHA1_MEMO)
    )
    recalled = fields.read_memo(annotations, reads)
    spec = obj.get("spec")
    if isinstance(spec, Mapping):
        out["spec"], memo = fields.convert_spec(spec, kind.spec, direction, recalled)
    else:
        memo = {}
    fields.write_memo(annotations, writes, memo)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    status = obj.get("status")
    if isinstance(status, Mapping):
        if direction is fields.Direction.UP:
            out["status"] = shapes.status_up(status, kind.status)
        else:
            out["status"] = shapes.status_down(status, kind.status)
    return out
