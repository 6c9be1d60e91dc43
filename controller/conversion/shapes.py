"""The v1alpha1 <-> v1 shapes of the pieces kinds share (Knative eventing v0.7-v0.10, 2019).

- `ObjectReference` `{apiVersion, kind, name, namespace, uid, resourceVersion, fieldPath}`
  <-> `KReference` `{apiVersion, kind, name, namespace}`;
- a destination `{ref, uri}` (older: `{dnsName}`, or the reference inline) <-> `Destination`
  `{ref, uri}`; `dnsName` becomes `uri: http://<dnsName>/`;
- Trigger `filter.sourceAndType: {type, source}` (`""` or `Any`: any value) <->
  `filter.attributes` naming only the set ones;
- Subscription `reply.channel` (an ObjectReference, v0.7-v0.9) <-> `reply.ref`;
- channel `subscribable.subscribers[]` `{subscriberURI, replyURI, deadLetterSink}` <->
  `subscribers[]` `{subscriberUri, replyUri, delivery.deadLetterSink.uri}`;
- status `address.hostname` <-> derived from `address.url`.

Every function here is pure and total on the shapes the CRD schemas admit; what one side cannot
say is kept by the round-trip annotations of `fields.py`.
"""

from __future__ import annotations

import copy
import urllib.parse
from collections.abc import Mapping
from typing import Any

ANY = "Any"
"""The v0.x Trigger filter value meaning "any value" (before it became the empty string)."""
KREFERENCE_KEYS = ("apiVersion", "kind", "name", "namespace")


def _pick(obj: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: copy.deepcopy(obj[k]) for k in keys if obj.get(k) not in (None, "")}


STORED_AT_V1 = frozenset({
    ("eventing.knative.dev", "Broker"), ("eventing.knative.dev", "Trigger"),
    ("messaging.knative.dev", "InMemoryChannel"), ("messaging.knative.dev", "Channel"),
    ("messaging.knative.dev", "Subscription"),
})  # fmt: skip
"""The kinds converted here (`kinds.KINDS`): a v1alpha1 reference to one of them is stored
as a reference to v1, so reconcilers read and patch the referent at the version it is stored
at (a patch of `spec.subscribers` at v1alpha1 would be pruned)."""


def reference_up(ref: Mapping[str, Any]) -> dict[str, Any]:
    """ObjectReference -> KReference (uid, resourceVersion, fieldPath have no home)."""
    out = _pick(ref, KREFERENCE_KEYS)
    group, _, version = str(out.get("apiVersion", "")).rpartition("/")
    if version == "v1alpha1" and (group, out.get("kind")) in STORED_AT_V1:
        out["apiVersion"] = f"{group}/v1"
    return out


def reference_down(ref: Mapping[str, Any]) -> dict[str, Any]:
    """KReference -> ObjectReference (group and address have no home)."""
    return _pick(ref, KREFERENCE_KEYS)


def destination_up(dest: Mapping[str, Any]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    ref = dest.get("ref")
    if ref is None and dest.get("name"):  # the oldest shape: the reference inline
        ref = dest
    if isinstance(ref, Mapping):
        out["ref"] = reference_up(ref)
    if dest.get("uri"):
        out["uri"] = dest["uri"]
    elif dest.get("dnsName"):
        out["uri"] = f"http://{dest['dnsName']}/"
    return out or None


def destination_down(dest: Mapping[str, Any]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if isinstance(dest.get("ref"), Mapping):
        out["ref"] = reference_down(dest["ref"])
    if dest.get("uri"):
        out["uri"] = dest["uri"]
    return out or None


def reply_up(reply: Mapping[str, Any]) -> dict[str, Any] | None:
    """v0.7-v0.9 `{channel: ObjectReference}`, v0.10 `{ref, uri}` -> Destination."""
    if reply.get("ref") is None and isinstance(reply.get("channel"), Mapping):
        return destination_up({"ref": reply["channel"], "uri": reply.get("uri")})
    return destination_up(reply)


def delivery_up(delivery: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(delivery))
    if isinstance(out.get("deadLetterSink"), Mapping):
        sink = destination_up(out.pop("deadLetterSink"))
        if sink is not None:
            out["deadLetterSink"] = sink
    return out


def delivery_down(delivery: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(delivery))
    if isinstance(out.get("deadLetterSink"), Mapping):
        sink = destination_down(out.pop("deadLetterSink"))
        if sink is not None:
            out["deadLetterSink"] = sink
    return out


def filter_up(trigger_filter: Mapping[str, Any]) -> dict[str, Any]:
    """`attributes` as they are; `sourceAndType` as the attributes it names (empty or `Any`
    matches everything, so it names nothing)."""
    if isinstance(trigger_filter.get("attributes"), Mapping):
        return {"attributes": dict(trigger_filter["attributes"])}
    pair = trigger_filter.get("sourceAndType")
    if isinstance(pair, Mapping):
        return {
            "attributes": {
                k: pair[k] for k in ("type", "source") if pair.get(k) not in (None, "", ANY)
            }
        }
    return {}


def filter_down(trigger_filter: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(trigger_filter.get("attributes"), Mapping):
        return {"attributes": dict(trigger_filter["attributes"])}
    return {}


_SUBSCRIBER_RENAMES = {"subscriberURI": "subscriberUri", "replyURI": "replyUri"}


def subscriber_up(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A channel's v1alpha1 SubscriberSpec -> v1 (its dead letter sink was a bare URI)."""
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "deadLetterSink":
            continue
        if key == "delivery" and isinstance(value, Mapping):
            out["delivery"] = delivery_up(value)
        else:
            out[_SUBSCRIBER_RENAMES.get(key, key)] = copy.deepcopy(value)
    dls = entry.get("deadLetterSink")
    if dls and "deadLetterSink" not in out.get("delivery", {}):
        out.setdefault("delivery", {})["deadLetterSink"] = {"uri": dls}
    return out


_V1_SUBSCRIBER_KEYS = ("uid", "generation", "subscriberUri", "replyUri", "delivery")


def subscriber_down(entry: Mapping[str, Any]) -> dict[str, Any]:
    back = {v: k for k, v in _SUBSCRIBER_RENAMES.items()}
    out: dict[str, Any] = {}
    for key in _V1_SUBSCRIBER_KEYS:
        if key not in entry:
            continue
        value = entry[key]
        if key == "delivery" and isinstance(value, Mapping):
            out["delivery"] = delivery_down(value)
        else:
            out[back.get(key, key)] = copy.deepcopy(value)
    return out


def subscribable_up(subscribable: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    subscribers = subscribable.get("subscribers")
    if not isinstance(subscribers, list):
        return None
    return [subscriber_up(s) for s in subscribers if isinstance(s, Mapping)]


def subscribable_down(subscribers: Any) -> dict[str, Any] | None:
    if not isinstance(subscribers, list):
        return None
    return {"subscribers": [subscriber_down(s) for s in subscribers if isinstance(s, Mapping)]}


# Status: written by the controller at v1; v1alpha1 readers see it renamed. No memo needed:
# only the controller writes status, always at v1.


def hostname_of(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or ""


def status_down(status: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """v1 status -> v1alpha1: `renames` maps v1 keys (dotted for one level) to v1alpha1 ones;
    the address gains its `hostname`."""
    out = _renamed(status, renames)
    address = out.get("address")
    if isinstance(address, dict) and address.get("url"):
        address["hostname"] = hostname_of(str(address["url"]))
    return out


def status_up(status: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    out = _renamed(status, {v: k for k, v in renames.items()})
    address = out.get("address")
    if isinstance(address, dict):
        address.pop("hostname", None)
    return out


def _renamed(status: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    out = copy.deepcopy(dict(status))
    for old, new in renames.items():
        src, dst = old.split("."), new.split(".")
        value = _take(out, src)
        if value is not None:
            _put(out, dst, value)
    return out


def _take(obj: dict[str, Any], path: list[str]) -> Any:
    parent = obj
    for key in path[:-1]:
        child = parent.get(key)
        if not isinstance(child, dict):
            return None
        parent = child
    value = parent.pop(path[-1], None)
    if len(path) > 1 and not parent:
        obj.pop(path[0], None)
    return value


def _put(obj: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        obj = obj.setdefault(key, {})
    obj[path[-1]] = value
