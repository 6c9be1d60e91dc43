"""The rules of every kevents kind, pure: one rule set for the admission webhook (which
refuses a bad object at `kubectl apply`) and the reconcilers (which report the same message
on Ready), so "accepted" means "will work".

```
problems(group, kind, obj, old)  -> [str]   webhook: create (old None) and update
spec_problems(group, kind, spec) -> [str]   reconcilers: the spec rules alone
relevant_change(obj, old)        -> bool    an update worth judging (spec or class changed)
```

Each message starts with its field path (`spec.schedule: ...`); where Knative's clients read
the exact words, they are Knative's `apis.FieldError` text (`invalid value: Unknown:
spec.mode`, the Broker class's `Immutable fields changed (-old +new): annotations` diff).
The rules, by kind (knative/eventing `pkg/apis/*/v1/*_validation.go`):

- every source (`sink`): a Destination has a `ref` or a `uri`; without `ref` the `uri` is
  absolute with a host; with `ref` it is relative. `ceOverrides.extensions` keys are ASCII
  letters and digits;
- PingSource: `kevents.pingspec` (schedule, timezone, data / dataBase64, contentType);
- KafkaSource: `kevents.kafkasourcespec` (topics, bootstrapServers, initialOffset, ordering,
  consumers, net secretKeyRefs), `delivery`; `spec.consumerGroup` is immutable;
- Trigger: `kevents.eventfilter` (attribute names, one dialect per filter, CESQL that
  parses), `subscriber`, `delivery`; `spec.broker` is immutable;
- ApiServerSource: `mode` Reference or Resource (checked here, not by a CRD enum, so the
  refusal has Knative's words);
- Broker: `delivery`; the class annotation `eventing.knative.dev/broker.class`, once set,
  is immutable (Knative: "Immutable fields changed");
- Channel, InMemoryChannel: `delivery` and every subscriber's `delivery`;
- Subscription: `subscriber`, `reply`, `delivery`; `spec.channel` is immutable;
- Sequence: at least one step, each a Destination with its `delivery`; `reply`;
- Parallel: at least one branch, each with a `subscriber`, optional `filter` and `reply`,
  its `delivery`; `reply`;
- `delivery` anywhere: `kevents.retries.delivery_problems` (retry >= 0, backoffPolicy,
  ISO-8601 durations the dispatcher can follow, timeout not zero) plus its deadLetterSink.

An update that leaves the spec (and the Broker class) unchanged is never judged: status
writes, finalizer removals and label edits always pass, so deleting an object whose spec
has become invalid under newer rules is never blocked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from kevents import kafkasourcespec, pingspec, retries
from kevents.eventfilter import trigger as trigger_filter

BROKER_CLASS = "eventing.knative.dev/broker.class"
_ABSOLUTE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:")
_WITH_HOST = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]+")
_EXTENSION = re.compile(r"[a-zA-Z0-9]+")

Spec = Mapping[str, Any]


def destination_problems(dest: object, path: str, *, required: bool = True) -> list[str]:
    """duckv1.Destination: ref or uri, an absolute uri with a host alone, relative with ref."""
    if dest is None:
        return [f"{path}: missing field(s)"] if required else []
    if not isinstance(dest, Mapping):
        return [f"{path}: must be an object with ref or uri"]
    ref, uri = dest.get("ref"), dest.get("uri")
    if not ref and not uri:
        return [f"{path}: expected at least one, got none: ref, uri"]
    found = []
    if ref is not None and (not isinstance(ref, Mapping) or not ref.get("name")):
        found.append(f"{path}.ref.name: missing field(s)")
    if uri:
        text = str(uri)
        if ref and _ABSOLUTE.match(text):
            found.append(f"{path}.uri: an absolute uri is not allowed together with ref")
        elif not ref and not _WITH_HOST.match(text):
            found.append(f"{path}.uri: {text!r} is not an absolute URL with a host")
    return found


def delivery_problems(delivery: object, path: str = "spec.delivery") -> list[str]:
    """`kevents.retries.delivery_problems` plus the dead letter sink's Destination rules."""
    found = retries.delivery_problems(delivery, path)
    if isinstance(delivery, Mapping) and delivery.get("deadLetterSink") is not None:
        found += destination_problems(delivery["deadLetterSink"], f"{path}.deadLetterSink")
    return found


def _source(spec: Spec) -> list[str]:
    found = destination_problems(spec.get("sink"), "spec.sink")
    extensions = (spec.get("ceOverrides") or {}).get("extensions") or {}
    if isinstance(extensions, Mapping):
        for key in extensions:
            if not _EXTENSION.fullmatch(str(key)):
                found.append(f"spec.ceOverrides.extensions[{key}]: invalid extension name: "
                             "only ASCII letters and digits")  # fmt: skip
    return found


API_SERVER_MODES = ("Reference", "Resource")


def _apiserver(spec: Spec) -> list[str]:
    """Knative's `ApiServerSourceSpec.Validate`: `mode` Reference or Resource (empty is
    defaulted to Reference), with `apis.ErrInvalidValue`'s words."""
    found = []
    mode = spec.get("mode")
    if mode and mode not in API_SERVER_MODES:
        found.append(f"invalid value: {mode}: spec.mode")
    return found + _source(spec)


def _ping(spec: Spec) -> list[str]:
    return [str(p) for p in pingspec.problems(spec)] + _source(spec)


def _kafka_source(spec: Spec) -> list[str]:
    found = kafkasourcespec.problems(spec) + _source(spec)
    return found + delivery_problems(spec.get("delivery"))


def _trigger(spec: Spec) -> list[str]:
    attributes = (spec.get("filter") or {}).get("attributes")
    found = trigger_filter.validate(attributes, spec.get("filters"))
    found += destination_problems(spec.get("subscriber"), "spec.subscriber")
    return found + delivery_problems(spec.get("delivery"))


def _broker(spec: Spec) -> list[str]:
    return delivery_problems(spec.get("delivery"))


def _channelable(spec: Spec) -> list[str]:
    found = delivery_problems(spec.get("delivery"))
    for index, subscriber in enumerate(spec.get("subscribers") or []):
        if isinstance(subscriber, Mapping):
            found += retries.delivery_problems(
                subscriber.get("delivery"), f"spec.subscribers[{index}].delivery"
            )
    return found


def _subscription(spec: Spec) -> list[str]:
    found = destination_problems(spec.get("subscriber"), "spec.subscriber", required=False)
    found += destination_problems(spec.get("reply"), "spec.reply", required=False)
    return found + delivery_problems(spec.get("delivery"))


def _sequence(spec: Spec) -> list[str]:
    steps = spec.get("steps")
    if not isinstance(steps, list) or not steps:
        return ["spec.steps: missing field(s)"]
    found = []
    for index, step in enumerate(steps):
        found += destination_problems(step, f"spec.steps[{index}]")
        if isinstance(step, Mapping):
            found += delivery_problems(step.get("delivery"), f"spec.steps[{index}].delivery")
    return found + destination_problems(spec.get("reply"), "spec.reply", required=False)


def _parallel(spec: Spec) -> list[str]:
    branches = spec.get("branches")
    if not isinstance(branches, list) or not branches:
        return ["spec.branches: missing field(s)"]
    found = []
    for index, branch in enumerate(branches):
        path = f"spec.branches[{index}]"
        if not isinstance(branch, Mapping):
            found.append(f"{path}: must be an object with subscriber")
            continue
        found += destination_problems(branch.get("filter"), f"{path}.filter", required=False)
        found += destination_problems(branch.get("subscriber"), f"{path}.subscriber")
        found += destination_problems(branch.get("reply"), f"{path}.reply", required=False)
        found += delivery_problems(branch.get("delivery"), f"{path}.delivery")
    return found + destination_problems(spec.get("reply"), "spec.reply", required=False)


RULES: dict[tuple[str, str], Callable[[Spec], list[str]]] = {
    ("sources.knative.dev", "PingSource"): _ping,
    ("sources.knative.dev", "ApiServerSource"): _apiserver,
    ("sources.knative.dev", "ContainerSource"): _source,
    ("sources.knative.dev", "SinkBinding"): _source,
    ("sources.knative.dev", "GitHubSource"): _source,
    ("sources.knative.dev", "KafkaSource"): _kafka_source,
    ("eventing.knative.dev", "Broker"): _broker,
    ("eventing.knative.dev", "Trigger"): _trigger,
    ("messaging.knative.dev", "Channel"): _channelable,
    ("messaging.knative.dev", "InMemoryChannel"): _channelable,
    ("messaging.knative.dev", "Subscription"): _subscription,
    ("flows.knative.dev", "Sequence"): _sequence,
    ("flows.knative.dev", "Parallel"): _parallel,
}
IMMUTABLE: dict[tuple[str, str], tuple[str, ...]] = {
    ("eventing.knative.dev", "Trigger"): ("broker",),
    ("messaging.knative.dev", "Subscription"): ("channel",),
    ("sources.knative.dev", "KafkaSource"): ("consumerGroup",),
}
"""Spec fields that may not change once set (the CRDs' CEL says so too)."""


def spec_problems(group: str, kind: str, spec: Spec) -> list[str]:
    """The spec rules of a kind ([] for a kind without rules)."""
    rules = RULES.get((group, kind))
    return [] if rules is None else rules(spec)


def _class(obj: Mapping[str, Any]) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(BROKER_CLASS)
    return None if value is None else str(value)


def relevant_change(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Whether an update changes what the rules judge (spec, Broker class); a create always."""
    if old is None:
        return True
    return obj.get("spec") != old.get("spec") or _class(obj) != _class(old)


def problems(
    group: str, kind: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None = None
) -> list[str]:
    """Why the object (created, or updated from `old`) is refused; [] to admit it."""
    if not relevant_change(obj, old):
        return []
    spec = obj.get("spec") or {}
    found = spec_problems(group, kind, spec if isinstance(spec, Mapping) else {})
    if old is None:
        return found
    old_spec = old.get("spec") or {}
    for field in IMMUTABLE.get((group, kind), ()):
        if field in old_spec and spec.get(field) != old_spec.get(field):
            found.append(f"spec.{field}: Immutable fields changed: {old_spec.get(field)!r} -> "
                         f"{spec.get(field)!r} (create a new {kind})")  # fmt: skip
    if kind == "Broker" and group == "eventing.knative.dev":
        before, after = _class(old), _class(obj)
        if before is not None and after != before:
            # Knative's `Broker.CheckImmutableFields` (a kmp.ShortDiff of the class).
            found.append("Immutable fields changed (-old +new): annotations\n{string}:\n"
                         f'\t-: "{before}"\n\t+: "{after or ""}"\n')  # fmt: skip
    return found
