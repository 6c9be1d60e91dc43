"""Pure parts of Sequence and Parallel: children's names and wiring (Knative's resources
packages), statuses from the children (Knative's lifecycle), the spec rules, the CRDs."""

from __future__ import annotations

from typing import Any

import pytest

from controller.apis import flows as flow_apis
from controller.channel import backing
from controller.flows import resources
from controller.framework import conditions
from kevents import validation

T0 = "2026-01-01T00:00:00Z"
IMC: backing.TemplateDict = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"}
STEP_REF = {"apiVersion": "v1", "kind": "Service", "name": "step"}
OWNER = {
    "apiVersion": "flows.knative.dev/v1", "kind": "Sequence", "name": "seq", "uid": "u-seq",
    "controller": True, "blockOwnerDeletion": True,
}  # fmt: skip


def sequence(steps: list[dict[str, Any]], reply: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"steps": steps, "channelTemplate": IMC}
    if reply is not None:
        spec["reply"] = reply
    return {
        "apiVersion": "flows.knative.dev/v1", "kind": "Sequence",
        "metadata": {"name": "seq", "namespace": "ns", "uid": "u-seq"}, "spec": spec,
    }  # fmt: skip


def parallel(branches: list[dict[str, Any]], reply: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"branches": branches, "channelTemplate": IMC}
    if reply is not None:
        spec["reply"] = reply
    return {
        "apiVersion": "flows.knative.dev/v1", "kind": "Parallel",
        "metadata": {"name": "par", "namespace": "ns", "uid": "u-par"}, "spec": spec,
    }  # fmt: skip


def imc_ref(name: str) -> dict[str, Any]:
    return {"ref": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
                    "name": name, "namespace": "ns"}}  # fmt: skip


def test_sequence_channels_are_one_per_step_of_the_template_kind_owned_by_the_sequence() -> None:
    template: backing.TemplateDict = {**IMC, "spec": {"delivery": {"retry": 1}}}
    seq = sequence([{"ref": STEP_REF}] * 3)
    channels = resources.sequence_channels(seq, template)
    assert [c["metadata"]["name"] for c in channels] == [
        "seq-kn-sequence-0", "seq-kn-sequence-1", "seq-kn-sequence-2",
    ]  # fmt: skip
    assert channels[0] == {
        "apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
        "metadata": {"name": "seq-kn-sequence-0", "namespace": "ns", "ownerReferences": [OWNER]},
        "spec": {"delivery": {"retry": 1}},
    }  # fmt: skip


def test_sequence_step_replies_to_the_next_channel_and_the_last_to_the_reply() -> None:
    delivery = {"retry": 2, "backoffDelay": "PT0.1S"}
    reply = {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "b2"}}
    seq = sequence(
        [{"ref": STEP_REF}, {"uri": "http://two.example/x", "delivery": delivery},
         {"ref": STEP_REF, "uri": "/three"}],
        reply,
    )  # fmt: skip
    subs = resources.sequence_subscriptions(seq, IMC)
    assert [s["metadata"]["name"] for s in subs] == [
        "seq-kn-sequence-0", "seq-kn-sequence-1", "seq-kn-sequence-2",
    ]  # fmt: skip
    assert all(s["metadata"]["ownerReferences"] == [OWNER] for s in subs)
    channel = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"}
    assert [s["spec"] for s in subs] == [
        {"channel": {**channel, "name": "seq-kn-sequence-0"}, "subscriber": {"ref": STEP_REF},
         "reply": imc_ref("seq-kn-sequence-1")},
        {"channel": {**channel, "name": "seq-kn-sequence-1"},
         "subscriber": {"uri": "http://two.example/x"}, "reply": imc_ref("seq-kn-sequence-2"),
         "delivery": delivery},
        {"channel": {**channel, "name": "seq-kn-sequence-2"},
         "subscriber": {"ref": STEP_REF, "uri": "/three"}, "reply": reply},
    ]  # fmt: skip


def test_a_sequence_without_reply_ends_at_its_last_step() -> None:
    subs = resources.sequence_subscriptions(sequence([{"ref": STEP_REF}]), IMC)
    assert "reply" not in subs[0]["spec"]


def test_parallel_has_an_ingress_channel_and_one_channel_per_branch() -> None:
    par = parallel([{"subscriber": {"ref": STEP_REF}}] * 2)
    assert [c["metadata"]["name"] for c in resources.parallel_channels(par, IMC)] == [
        "par-kn-parallel", "par-kn-parallel-0", "par-kn-parallel-1",
    ]  # fmt: skip


def test_parallel_branches_filter_into_their_channel_and_reply_to_theirs_or_the_parallels() -> None:
    filt = {"uri": "http://filter.example/"}
    own_reply = {"uri": "http://own.example/"}
    default_reply = {"uri": "http://default.example/"}
    delivery = {"retry": 3}
    par = parallel(
        [{"filter": filt, "subscriber": {"ref": STEP_REF}, "reply": own_reply,
          "delivery": delivery},
         {"subscriber": {"ref": STEP_REF}}],
        default_reply,
    )  # fmt: skip
    (f0, s0), (f1, s1) = resources.parallel_subscriptions(par, IMC)
    channel = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"}
    assert [f0["metadata"]["name"], s0["metadata"]["name"]] == [
        "par-kn-parallel-filter-0", "par-kn-parallel-0",
    ]  # fmt: skip
    assert f0["spec"] == {
        "channel": {**channel, "name": "par-kn-parallel"}, "subscriber": filt,
        "reply": imc_ref("par-kn-parallel-0"),
    }  # fmt: skip
    assert s0["spec"] == {
        "channel": {**channel, "name": "par-kn-parallel-0"}, "subscriber": {"ref": STEP_REF},
        "reply": own_reply, "delivery": delivery,
    }  # fmt: skip
    # No filter: the ingress channel's events go straight into the branch channel.
    assert f1["spec"] == {
        "channel": {**channel, "name": "par-kn-parallel"},
        "subscriber": imc_ref("par-kn-parallel-1"),
    }  # fmt: skip
    assert s1["spec"]["reply"] == default_reply


def channel_obj(name: str, ready: str | None, url: str | None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "lastTransitionTime": T0}]
    if url is not None:
        status["address"] = {"name": "http", "url": url}
    return {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
            "metadata": {"name": name, "namespace": "ns"}, "status": status}  # fmt: skip


def sub_obj(name: str, ready: str | None) -> dict[str, Any]:
    obj = channel_obj(name, ready, None)
    return {**obj, "apiVersion": "messaging.knative.dev/v1", "kind": "Subscription"}


def start() -> conditions.Conditions:
    return resources.CONDITION_SET.initial((), clock=T0)


def states(conds: conditions.Conditions) -> dict[str, str]:
    return {c.type: c.status for c in conds.items}


def test_sequence_is_ready_with_the_first_channels_address_when_every_child_is() -> None:
    status: dict[str, Any] = {}
    conds = resources.sequence_status(
        start(), status,
        [channel_obj("c0", "True", "http://c0.ns"), channel_obj("c1", "True", "http://c1.ns")],
        [sub_obj("s0", "True"), sub_obj("s1", "True")],
    )  # fmt: skip
    assert states(conds) == {
        "Addressable": "True", "ChannelsReady": "True", "SubscriptionsReady": "True",
        "Ready": "True",
    }  # fmt: skip
    assert status["address"] == {"url": "http://c0.ns"}
    assert status["channelStatuses"][1] == {
        "channel": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
                    "name": "c1", "namespace": "ns"},
        "ready": {"type": "Ready", "status": "True", "lastTransitionTime": T0},
    }  # fmt: skip
    assert status["subscriptionStatuses"][0]["subscription"]["kind"] == "Subscription"


def test_sequence_waits_for_a_child_without_ready_and_says_which() -> None:
    status: dict[str, Any] = {}
    conds = resources.sequence_status(
        start(), status, [channel_obj("c0", None, None)], [sub_obj("s0", "False")]
    )
    assert states(conds)["Ready"] == "Unknown"
    assert status["channelStatuses"][0]["ready"] == {
        "type": "Ready", "status": "Unknown", "reason": "NoReady",
        "message": "Channel does not have Ready condition",
    }  # fmt: skip
    assert "address" not in status
    addressable = conds.get("Addressable")
    assert addressable is not None and addressable.reason == "emptyAddress"
    subs = conds.get("SubscriptionsReady")
    assert subs is not None and (subs.status, subs.reason) == ("Unknown", "SubscriptionsNotReady")


def test_parallel_channels_count_as_ready_by_address_and_subscriptions_by_ready() -> None:
    status: dict[str, Any] = {}
    conds = resources.parallel_status(
        start(), status, channel_obj("in", "Unknown", "http://in.ns"),
        [channel_obj("b0", None, "http://b0.ns"), channel_obj("b1", None, None)],
        [(sub_obj("f0", "True"), sub_obj("s0", "True")),
         (sub_obj("f1", "True"), sub_obj("s1", "True"))],
    )  # fmt: skip
    assert status["address"] == {"url": "http://in.ns"}
    assert status["ingressChannelStatus"]["ready"] == {"type": "Ready", "status": "True"}
    assert status["branchStatuses"][1]["filterChannelStatus"]["ready"] == {
        "type": "Ready", "status": "False", "reason": "NotAddressable",
        "message": "Channel is not addressable",
    }  # fmt: skip
    assert (
        status["branchStatuses"][0]["subscriberSubscriptionStatus"]["subscription"]["name"] == "s0"
    )
    assert states(conds) == {
        "Addressable": "True", "ChannelsReady": "False", "SubscriptionsReady": "True",
        "Ready": "False",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "spec", "problems"),
    [
        ("Sequence", {}, ["spec.steps: missing field(s)"]),
        ("Sequence", {"steps": []}, ["spec.steps: missing field(s)"]),
        ("Sequence", {"steps": [{"delivery": {"retry": 1}}]},
         ["spec.steps[0]: expected at least one, got none: ref, uri"]),
        ("Sequence", {"steps": [{"uri": "http://a.example", "delivery": {"retry": -1}}]},
         ["spec.steps[0].delivery.retry must be an integer >= 0, got -1"]),
        ("Sequence", {"steps": [{"uri": "/relative"}], "reply": {"uri": "x"}},
         ["spec.steps[0].uri: '/relative' is not an absolute URL with a host",
          "spec.reply.uri: 'x' is not an absolute URL with a host"]),
        ("Sequence", {"steps": [{"ref": STEP_REF}]}, []),
        ("Parallel", {"branches": []}, ["spec.branches: missing field(s)"]),
        ("Parallel", {"branches": [{"filter": {"uri": "http://f.example"}}]},
         ["spec.branches[0].subscriber: missing field(s)"]),
        ("Parallel", {"branches": [{"subscriber": {"ref": STEP_REF}, "reply": {}}]},
         ["spec.branches[0].reply: expected at least one, got none: ref, uri"]),
        ("Parallel", {"branches": [{"subscriber": {"ref": STEP_REF}}]}, []),
    ],
    ids=["no-steps", "empty-steps", "step-without-destination", "step-delivery",
         "relative-uris", "sequence-ok", "empty-branches", "branch-without-subscriber",
         "empty-reply", "parallel-ok"],
)  # fmt: skip
def test_flow_spec_rules(kind: str, spec: dict[str, Any], problems: list[str]) -> None:
    assert validation.spec_problems("flows.knative.dev", kind, spec) == problems


@pytest.mark.parametrize("build", [flow_apis.sequence, flow_apis.parallel], ids=["seq", "par"])
def test_flow_crds_are_listed_as_flows_with_knatives_columns(build: Any) -> None:
    crd = build()
    names = crd["spec"]["names"]
    assert names["categories"] == ["all", "knative", "flows"]
    assert crd["metadata"]["labels"]["duck.knative.dev/addressable"] == "true"
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1"
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "URL", "Age", "Ready", "Reason",
    ]  # fmt: skip
