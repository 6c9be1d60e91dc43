"""The v1alpha1 <-> v1 conversion of Broker, Trigger, channels and Subscription: the 2019
tutorials' objects become the v1 objects kevents reconciles, and every object converted and
back is the object it was (hypothesis), even after the controller wrote v1-only fields."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.apis import __main__ as render
from controller.conversion import fields, kinds, review, shapes
from tests.unit.test_controller_crds import crd

V1, V1ALPHA1 = "v1", "v1alpha1"
GROUPS = {
    "Broker": "eventing.knative.dev", "Trigger": "eventing.knative.dev",
    "InMemoryChannel": "messaging.knative.dev", "Channel": "messaging.knative.dev",
    "Subscription": "messaging.knative.dev",
}  # fmt: skip


def obj(kind: str, version: str, spec: Any, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUPS[kind]}/{version}", "kind": kind,
        "metadata": {"name": "x", "namespace": "ns", "uid": "u-1", **extra}, "spec": spec,
    }  # fmt: skip


def to(version: str, o: dict[str, Any]) -> dict[str, Any]:
    return kinds.convert(o, f"{GROUPS[o['kind']]}/{version}")


SERVICE_V1ALPHA1 = {"apiVersion": "serving.knative.dev/v1alpha1", "kind": "Service",
                    "name": "event-display"}  # fmt: skip
CHANNEL = {"apiVersion": "messaging.knative.dev/v1alpha1", "kind": "InMemoryChannel",
           "name": "ch"}  # fmt: skip
CHANNEL_V1 = {**CHANNEL, "apiVersion": "messaging.knative.dev/v1"}  # stored as a v1 reference

# The 2019 tutorials' specs and the v1 spec kevents reconciles.
UP = {
    "trigger sourceAndType type only": (
        "Trigger",
        {"broker": "default", "filter": {"sourceAndType": {"type": "dev.knative.foo"}},
         "subscriber": {"ref": SERVICE_V1ALPHA1}},
        {"broker": "default", "filter": {"attributes": {"type": "dev.knative.foo"}},
         "subscriber": {"ref": SERVICE_V1ALPHA1}},
    ),
    "trigger sourceAndType Any is no attribute": (
        "Trigger",
        {"broker": "default", "filter": {"sourceAndType": {"type": "Any", "source": ""}},
         "subscriber": {"ref": SERVICE_V1ALPHA1}},
        {"broker": "default", "filter": {"attributes": {}},
         "subscriber": {"ref": SERVICE_V1ALPHA1}},
    ),
    "trigger attributes, ObjectReference with uid": (
        "Trigger",
        {"broker": "b", "filter": {"attributes": {"type": "t", "source": ""}},
         "subscriber": {"ref": {**SERVICE_V1ALPHA1, "namespace": "ns", "uid": "9"}}},
        {"broker": "b", "filter": {"attributes": {"type": "t", "source": ""}},
         "subscriber": {"ref": {**SERVICE_V1ALPHA1, "namespace": "ns"}}},
    ),
    "trigger subscriber dnsName": (
        "Trigger",
        {"broker": "default", "subscriber": {"dnsName": "display.ns.svc.cluster.local"}},
        {"broker": "default", "subscriber": {"uri": "http://display.ns.svc.cluster.local/"}},
    ),
    "broker channelTemplateSpec has no v1 home": (
        "Broker",
        {"channelTemplateSpec": {"apiVersion": "messaging.knative.dev/v1alpha1",
                                 "kind": "InMemoryChannel"}},
        {},
    ),
    "subscription channel, subscriber, reply.channel": (
        "Subscription",
        {"channel": CHANNEL, "subscriber": {"ref": SERVICE_V1ALPHA1},
         "reply": {"channel": {**CHANNEL, "name": "replies"}},
         "delivery": {"deadLetterSink": {"uri": "http://dls.ns"}, "retry": 3}},
        {"channel": CHANNEL_V1, "subscriber": {"ref": SERVICE_V1ALPHA1},
         "reply": {"ref": {**CHANNEL_V1, "name": "replies"}},
         "delivery": {"deadLetterSink": {"uri": "http://dls.ns"}, "retry": 3}},
    ),
    "imc subscribable": (
        "InMemoryChannel",
        {"subscribable": {"subscribers": [
            {"uid": "s1", "generation": 2, "subscriberURI": "http://a", "replyURI": "http://r",
             "deadLetterSink": "http://dls"}]}},
        {"subscribers": [
            {"uid": "s1", "generation": 2, "subscriberUri": "http://a", "replyUri": "http://r",
             "delivery": {"deadLetterSink": {"uri": "http://dls"}}}]},
    ),
}  # fmt: skip


@pytest.mark.parametrize(("kind", "old", "new"), UP.values(), ids=UP.keys())
def test_tutorial_specs_become_the_v1_spec_and_come_back_as_written(
    kind: str, old: dict[str, Any], new: dict[str, Any]
) -> None:
    up = to(V1, obj(kind, V1ALPHA1, old))
    assert up["apiVersion"] == f"{GROUPS[kind]}/v1"
    assert up["spec"] == new
    assert to(V1ALPHA1, up) == obj(kind, V1ALPHA1, old)


def test_a_v1_edit_wins_over_the_remembered_v1alpha1_field() -> None:
    old = {"broker": "default", "filter": {"sourceAndType": {"type": "a"}},
           "subscriber": {"ref": SERVICE_V1ALPHA1}}  # fmt: skip
    up = to(V1, obj("Trigger", V1ALPHA1, old))
    up["spec"]["filter"] = {"attributes": {"type": "b"}}
    down = to(V1ALPHA1, up)
    assert down["spec"]["filter"] == {"attributes": {"type": "b"}}
    assert "annotations" not in down["metadata"]


def test_fields_the_controller_defaults_at_v1_survive_an_update_at_v1alpha1() -> None:
    """`kubectl apply` of the old YAML again: v1 Broker `spec.config` is immutable and must
    come back; the class annotation and the user's own annotations are untouched."""
    config = {"apiVersion": "v1", "kind": "ConfigMap", "name": "config-br-default-channel",
              "namespace": "kevents-system"}  # fmt: skip
    stored = obj(
        "Broker",
        V1,
        {"config": config},
        annotations={"eventing.knative.dev/broker.class": "MTChannelBasedBroker"},
    )
    down = to(V1ALPHA1, stored)
    assert down["spec"] == {}
    assert down["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == (
        "MTChannelBasedBroker"
    )
    down["spec"]["delivery"] = {"retry": 2}  # the update
    up = to(V1, down)
    assert up["spec"] == {"config": config, "delivery": {"retry": 2}}
    assert up["metadata"]["annotations"] == stored["metadata"]["annotations"]


def test_status_reads_with_the_v1alpha1_names() -> None:
    stored = obj("Subscription", V1, {"channel": CHANNEL})
    stored["status"] = {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True"}],
        "physicalSubscription": {"subscriberUri": "http://s", "replyUri": "http://r"},
    }
    assert to(V1ALPHA1, stored)["status"] == {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True"}],
        "physicalSubscription": {"subscriberURI": "http://s", "replyURI": "http://r"},
    }
    imc = obj("InMemoryChannel", V1, {})
    imc["status"] = {"address": {"url": "http://ch-kn-channel.ns.svc.cluster.local"},
                     "subscribers": [{"uid": "s1", "ready": "True"}]}  # fmt: skip
    assert to(V1ALPHA1, imc)["status"] == {
        "address": {"url": "http://ch-kn-channel.ns.svc.cluster.local",
                    "hostname": "ch-kn-channel.ns.svc.cluster.local"},
        "subscribableStatus": {"subscribers": [{"uid": "s1", "ready": "True"}]},
    }  # fmt: skip


# Round trips over generated objects.
names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=12)
uris = st.builds(lambda h: f"http://{h}/", names)


def _reference(*extra: str) -> st.SearchStrategy[dict[str, Any]]:
    keys = ("apiVersion", "kind", "name", "namespace", *extra)
    return st.fixed_dictionaries({}, optional={k: names for k in keys})


def _destination_v1alpha1() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "ref": _reference("uid", "resourceVersion", "fieldPath"), "uri": uris, "dnsName": names,
        "apiVersion": names, "kind": names, "name": names,
    })  # fmt: skip


def _destination_v1() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "ref": _reference("group", "address"), "uri": uris, "CACerts": names, "audience": names,
    })  # fmt: skip


def _delivery(dest: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "deadLetterSink": dest, "retry": st.integers(0, 10),
        "backoffPolicy": st.sampled_from(["linear", "exponential"]), "backoffDelay": names,
    })  # fmt: skip


attributes = st.dictionaries(st.sampled_from(["type", "source", "subject", "ext"]),
                             st.one_of(st.just(""), st.just("Any"), names))  # fmt: skip
V1ALPHA1_SPECS = {
    "Trigger": st.fixed_dictionaries({"broker": names}, optional={
        "filter": st.one_of(
            st.fixed_dictionaries({}, optional={"attributes": attributes}),
            st.fixed_dictionaries({"sourceAndType": st.fixed_dictionaries({}, optional={
                "type": st.one_of(st.just("Any"), st.just(""), names),
                "source": st.one_of(st.just("Any"), names)})}),
        ),
        "subscriber": _destination_v1alpha1(),
        "delivery": _delivery(_destination_v1alpha1()),
    }),
    "Broker": st.fixed_dictionaries({}, optional={
        "channelTemplateSpec": st.fixed_dictionaries({"apiVersion": names, "kind": names}),
        "channelTemplate": st.fixed_dictionaries({"provisioner": _reference()}),
        "delivery": _delivery(_destination_v1alpha1()),
    }),
    "Subscription": st.fixed_dictionaries({"channel": _reference("uid")}, optional={
        "subscriber": _destination_v1alpha1(),
        "reply": st.one_of(_destination_v1alpha1(),
                           st.fixed_dictionaries({"channel": _reference("uid")})),
        "delivery": _delivery(_destination_v1alpha1()),
    }),
    "InMemoryChannel": st.fixed_dictionaries({}, optional={
        "subscribable": st.fixed_dictionaries({}, optional={"subscribers": st.lists(
            st.fixed_dictionaries({"uid": names}, optional={
                "generation": st.integers(1, 9), "subscriberURI": uris, "replyURI": uris,
                "deadLetterSink": uris, "delivery": _delivery(_destination_v1alpha1()),
            }), max_size=3)}),
        "delivery": _delivery(_destination_v1alpha1()),
    }),
}  # fmt: skip
V1ALPHA1_SPECS["Channel"] = st.fixed_dictionaries({}, optional={
    "channelTemplate": st.fixed_dictionaries({"apiVersion": names, "kind": names}),
    "subscribable": st.fixed_dictionaries({}, optional={"subscribers": st.lists(
        st.fixed_dictionaries({"uid": names}, optional={"subscriberURI": uris}), max_size=2)}),
})  # fmt: skip
V1_SPECS = {
    "Trigger": st.fixed_dictionaries({}, optional={
        "broker": names, "brokerRef": _reference(),
        "filter": st.fixed_dictionaries({}, optional={"attributes": attributes}),
        "filters": st.lists(st.fixed_dictionaries({"exact": attributes}), max_size=2),
        "subscriber": _destination_v1(), "delivery": _delivery(_destination_v1()),
    }),
    "Broker": st.fixed_dictionaries({}, optional={
        "config": _reference(), "delivery": _delivery(_destination_v1()),
    }),
    "Subscription": st.fixed_dictionaries({"channel": _reference("group")}, optional={
        "subscriber": _destination_v1(), "reply": _destination_v1(),
        "delivery": _delivery(_destination_v1()),
    }),
    "Channel": st.fixed_dictionaries({}, optional={
        "channelTemplate": st.fixed_dictionaries({"apiVersion": names, "kind": names}),
        "subscribers": st.lists(st.fixed_dictionaries({"uid": names}, optional={
            "generation": st.integers(1, 9), "subscriberUri": uris, "replyUri": uris,
            "subscriberCACerts": names, "name": names,
            "delivery": _delivery(_destination_v1()),
        }), max_size=3),
    }),
}  # fmt: skip


@given(st.sampled_from(sorted(V1ALPHA1_SPECS)).flatmap(
    lambda k: st.tuples(st.just(k), V1ALPHA1_SPECS[k])))  # fmt: skip
def test_v1alpha1_to_v1_and_back_is_the_same_object(case: tuple[str, dict[str, Any]]) -> None:
    kind, spec = case
    original = obj(kind, V1ALPHA1, spec, annotations={"user": "kept"})
    up = to(V1, original)
    assert to(V1, up) == up  # the stored version asked for: untouched
    assert to(V1ALPHA1, up) == original


@given(st.sampled_from(sorted(V1_SPECS)).flatmap(lambda k: st.tuples(st.just(k), V1_SPECS[k])))
def test_v1_to_v1alpha1_and_back_is_the_same_object(case: tuple[str, dict[str, Any]]) -> None:
    kind, spec = case
    original = obj(kind, V1, spec)
    assert to(V1, to(V1ALPHA1, original)) == original


def test_the_review_converts_every_object_or_fails_naming_the_one_it_cannot() -> None:
    trigger = obj("Trigger", V1ALPHA1, {"broker": "b", "subscriber": {"uri": "http://s"}})
    ok = review.respond({"uid": "r1", "desiredAPIVersion": "eventing.knative.dev/v1",
                         "objects": [trigger, to(V1, trigger)]})  # fmt: skip
    assert ok["uid"] == "r1" and ok["result"] == {"status": "Success"}
    assert [o["apiVersion"] for o in ok["convertedObjects"]] == ["eventing.knative.dev/v1"] * 2
    bad = copy.deepcopy(trigger)
    bad["apiVersion"] = "eventing.knative.dev/v1beta1"
    failed = review.respond({"uid": "r2", "desiredAPIVersion": "eventing.knative.dev/v1",
                             "objects": [trigger, bad]})  # fmt: skip
    assert failed == {"uid": "r2", "result": {
        "status": "Failure",
        "message": "Trigger has versions v1alpha1 and v1, not v1beta1 -> v1"}}  # fmt: skip
    other = review.respond({"uid": "r3", "desiredAPIVersion": "sources.knative.dev/v1",
                            "objects": [{"apiVersion": "sources.knative.dev/v1beta2",
                                         "kind": "PingSource"}]})  # fmt: skip
    assert other["result"]["status"] == "Failure"


def test_unreadable_memo_is_ignored() -> None:
    up = to(V1, obj("Trigger", V1ALPHA1, {"broker": "b", "filter": {"sourceAndType": {}}}))
    up["metadata"]["annotations"][fields.V1_MEMO] = "{not json"
    assert to(V1ALPHA1, up)["spec"]["filter"] == {"attributes": {}}


MANIFESTS = {k.crd: f"300-{k.kind.lower()}.yaml" for k in kinds.KINDS}


@pytest.mark.parametrize("name", sorted(MANIFESTS.values()))
def test_crds_serve_v1alpha1_deprecated_and_converted_by_the_controller(name: str) -> None:
    doc = crd(name)
    versions = {v["name"]: v for v in doc["spec"]["versions"]}
    assert versions["v1"]["storage"] and not versions["v1alpha1"]["storage"]
    assert versions["v1alpha1"]["served"] and versions["v1alpha1"]["deprecated"]
    assert doc["spec"]["conversion"] == {"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {"service": {"namespace": "kevents-system", "name": "kevents-webhook",
                                     "path": "/convert", "port": 443}}}}  # fmt: skip
    assert doc["metadata"]["name"] in kinds.CRDS
    assert name in render.manifests()


def test_v1alpha1_columns_are_knatives_2019_columns() -> None:
    trigger = {v["name"]: v for v in crd("300-trigger.yaml")["spec"]["versions"]}["v1alpha1"]
    assert [(c["name"], c["jsonPath"]) for c in trigger["additionalPrinterColumns"]] == [
        ("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        ("Reason", '.status.conditions[?(@.type=="Ready")].reason'),
        ("Broker", ".spec.broker"),
        ("Subscriber_URI", ".status.subscriberURI"),
        ("Age", ".metadata.creationTimestamp"),
    ]
    assert json.dumps(trigger).count("preserve-unknown-fields") == 1  # status only


def test_references_to_converted_kinds_are_kept_at_the_stored_version() -> None:
    assert {(k.group, k.kind) for k in kinds.KINDS} == shapes.STORED_AT_V1
