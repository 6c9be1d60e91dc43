"""The rules of kevents' kinds (`kevents.validation`), as the admission webhook and the
reconcilers apply them: each refusal names its field; unchanged specs are never judged."""

from __future__ import annotations

from typing import Any

import pytest

from controller import admission
from kevents import retries, validation

SINK = {"ref": {"apiVersion": "v1", "kind": "Service", "name": "display"}}
SRC, EVT, MSG = "sources.knative.dev", "eventing.knative.dev", "messaging.knative.dev"
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    (SRC, "PingSource", {"schedule": "every minute", "sink": SINK}, "spec.schedule"),
    (SRC, "PingSource", {"timezone": "Mars/Olympus", "sink": SINK}, "spec.timezone"),
    (SRC, "PingSource", {"data": "x", "dataBase64": "eA==", "sink": SINK},
     "spec.data, spec.dataBase64"),
    (SRC, "PingSource", {"sink": {}}, "spec.sink: expected at least one"),
    (SRC, "ContainerSource", {"sink": {"uri": "/relative"}}, "spec.sink.uri"),
    (SRC, "ApiServerSource", {"sink": SINK, "ceOverrides": {"extensions": {"a_b": "x"}}},
     "spec.ceOverrides.extensions[a_b]"),
    (EVT, "Trigger", {"broker": "b", "subscriber": SINK, "filters": [{"cesql": "type = "}]},
     "spec.filters[0].cesql"),
    (EVT, "Trigger", {"broker": "b", "subscriber": SINK, "delivery": {"backoffDelay": "PTx"}},
     "spec.delivery.backoffDelay"),
    (EVT, "Broker", {"delivery": {"retry": -1}}, "spec.delivery.retry"),
    (EVT, "Broker", {"delivery": {"deadLetterSink": {"uri": "nohost"}}},
     "spec.delivery.deadLetterSink.uri"),
    (MSG, "InMemoryChannel", {"subscribers": [{"delivery": {"timeout": "PT0S"}}]},
     "spec.subscribers[0].delivery.timeout"),
    (MSG, "Subscription", {"reply": {"ref": SINK["ref"], "uri": "http://a.b"}}, "spec.reply.uri"),
]  # fmt: skip


@pytest.mark.parametrize(("group", "kind", "spec", "field"), CASES,
                         ids=[f"{c[1]}-{c[3]}" for c in CASES])  # fmt: skip
def test_each_invalid_spec_is_refused_naming_its_field(
    group: str, kind: str, spec: dict[str, Any], field: str
) -> None:
    found = validation.problems(group, kind, {"spec": spec})
    assert any(p.startswith(field) for p in found), found


def test_valid_knative_specs_pass() -> None:
    ping = {"schedule": "*/2 * * * *", "contentType": "application/json",
            "data": '{"message": "Hello world!"}', "sink": SINK}  # fmt: skip
    delivery = {"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.2S"}
    trigger = {"broker": "default", "subscriber": SINK, "filters": [{"cesql": "type = 'x'"}],
               "delivery": delivery}  # fmt: skip
    assert validation.problems(SRC, "PingSource", {"spec": ping}) == []
    assert validation.problems(EVT, "Trigger", {"spec": trigger}) == []
    assert retries.delivery_problems(None) == []


def test_unchanged_spec_passes_and_immutable_fields_are_refused() -> None:
    bad = {"metadata": {"labels": {}}, "spec": {"schedule": "every minute"}}
    relabelled = {"metadata": {"labels": {"a": "b"}}, "spec": {"schedule": "every minute"}}
    assert validation.problems(SRC, "PingSource", relabelled, bad) == []
    klass = "eventing.knative.dev/broker.class"
    old = {"metadata": {"annotations": {klass: "MTChannelBasedBroker"}}, "spec": {}}
    new = {"metadata": {"annotations": {klass: "Kafka"}}, "spec": {}}
    assert [p.split(":")[0] for p in validation.problems(EVT, "Broker", new, old)] == [
        "Immutable fields changed (-old +new)"  # Knative's words
    ]
    unset: dict[str, Any] = {"metadata": {}, "spec": {}}
    assert validation.problems(EVT, "Broker", old, unset) == []  # the reconciler's default
    t_old = {"spec": {"broker": "a", "subscriber": SINK}}
    t_new = {"spec": {"broker": "b", "subscriber": SINK}}
    assert validation.problems(EVT, "Trigger", t_new, t_old)[0].startswith("spec.broker")


def test_defaulting_names_containers_and_labels_triggers() -> None:
    source = {"metadata": {"name": "hb", "namespace": "n"}, "spec": {"template": {"spec": {
        "containers": [{"image": "i"}, {"name": "x", "image": "i"}]}}}}  # fmt: skip
    request = {"operation": "CREATE", "kind": {"group": SRC, "kind": "ContainerSource"},
               "object": source}  # fmt: skip
    assert admission.defaults(request) == [{
        "op": "replace", "path": "/spec/template/spec/containers",
        "value": [{"image": "i", "name": "hb-0"}, {"name": "x", "image": "i"}],
    }]  # fmt: skip
    trigger = {"metadata": {"name": "t", "namespace": "n", "labels": {"a": "b"}},
               "spec": {"broker": "default", "filter": {}}}  # fmt: skip
    request = {"operation": "CREATE", "kind": {"group": EVT, "kind": "Trigger"}, "object": trigger}
    assert admission.defaults(request) == [
        {"op": "add", "path": "/metadata/labels/eventing.knative.dev~1broker", "value": "default"}
    ]
    # Knative's TriggerSpec.SetDefaults: an empty filter, the subscriber's namespace.
    trigger = {"metadata": {"name": "t", "namespace": "n",
                            "labels": {"eventing.knative.dev/broker": "default"}},
               "spec": {"broker": "default", "subscriber": {"ref": {"kind": "Service",
                                                                    "name": "s"}}}}  # fmt: skip
    request = {"operation": "CREATE", "kind": {"group": EVT, "kind": "Trigger"}, "object": trigger}
    assert admission.defaults(request) == [
        {"op": "add", "path": "/spec/filter", "value": {}},
        {"op": "add", "path": "/spec/subscriber/ref/namespace", "value": "n"},
    ]
