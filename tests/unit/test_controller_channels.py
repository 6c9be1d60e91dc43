"""Pure parts of the channel kinds: subscriber entries, readiness reports, default channel
template, status propagation from the backing channel, dispatcher endpoints, status patches."""

from __future__ import annotations

from typing import Any

import pytest

from controller.channel import backing, reconciler
from controller.framework import statuses
from controller.inmemorychannel import service
from controller.subscription import entry
from controller.subscription import reconciler as subreconciler

T0 = "2026-01-01T00:00:00Z"
SUB = {"metadata": {"name": "s", "uid": "u1", "generation": 2}, "spec": {}}


def test_entry_carries_resolved_uris_and_delivery_with_resolved_dead_letter_sink() -> None:
    sub = {**SUB, "spec": {"delivery": {
        "retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT1S",
        "deadLetterSink": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "dls"}},
    }}}  # fmt: skip
    physical = entry.Physical(subscriber_uri="http://a", reply_uri="http://r", dls_uri="http://d")
    assert entry.subscriber_spec(sub, physical) == {
        "uid": "u1", "generation": 2, "name": "s", "subscriberUri": "http://a",
        "replyUri": "http://r",
        "delivery": {"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT1S",
                     "deadLetterSink": {"uri": "http://d"}},
    }  # fmt: skip
    assert physical.status() == {
        "subscriberUri": "http://a",
        "replyUri": "http://r",
        "deadLetterSinkUri": "http://d",
    }


A: dict[str, Any] = {"uid": "a", "generation": 1}
B: dict[str, Any] = {"uid": "b", "generation": 1}
NEW_A: entry.SubscriberSpecDict = {"uid": "a", "generation": 2}
UPSERTS: dict[str, tuple[list[dict[str, Any]], Any]] = {
    "append": ([B], [B, dict(NEW_A)]),
    "replace-in-place": ([A, B], [dict(NEW_A), B]),
    "unchanged": ([dict(NEW_A), B], None),
    "duplicates-collapsed": ([A, B, A], [dict(NEW_A), B]),
}


@pytest.mark.parametrize(("current", "want"), UPSERTS.values(), ids=UPSERTS.keys())
def test_upsert(current: list[dict[str, Any]], want: Any) -> None:
    assert entry.upsert(current, NEW_A) == want


def test_remove() -> None:
    assert entry.remove([A, B], "a") == [B]
    assert entry.remove([B], "a") is None


def _report(**fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "ch"}, "status": {"subscribers": [fields]}}


REPORTS = {
    "ready": (_report(uid="u1", observedGeneration=2, ready="True"), ("True", "")),
    "not-ready": (
        _report(uid="u1", observedGeneration=2, ready="False", message="boom"),
        ("False", "SubscriptionNotMarkedReadyByChannel"),
    ),
    "unknown": (
        _report(uid="u1", observedGeneration=2, ready="Unknown"),
        ("Unknown", "SubscriptionNotMarkedReadyByChannel"),
    ),
    "old-generation": (
        _report(uid="u1", observedGeneration=1, ready="True"),
        ("Unknown", "SubscriptionNotMarkedReadyByChannel"),
    ),
    "absent": ({"metadata": {"name": "ch"}}, ("Unknown", "SubscriptionNotMarkedReadyByChannel")),
}


@pytest.mark.parametrize(("channel", "want"), REPORTS.values(), ids=REPORTS.keys())
def test_channel_ready_follows_the_report_for_this_generation(
    channel: dict[str, Any], want: tuple[str, str]
) -> None:
    conds = entry.channel_ready(subreconciler.CONDITION_SET.initial((), T0), channel, SUB)
    got = conds.get(entry.CHANNEL_READY)
    assert got is not None
    assert (got.status, got.reason) == want


IMC = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"}
TEMPLATES: dict[str, tuple[Any, Any]] = {
    "no-configmap": (None, backing.FALLBACK),
    "empty": ({"data": {}}, backing.FALLBACK),
    "cluster-default": (
        {"data": {"default-ch-config": "clusterDefault: {apiVersion: x/v1, kind: KafkaChannel}"}},
        {"apiVersion": "x/v1", "kind": "KafkaChannel"},
    ),
    "namespace-wins": (
        {"data": {"default-ch-config": "clusterDefault: {apiVersion: x/v1, kind: K}\n"
                  "namespaceDefaults:\n  ns: {apiVersion: y/v1, kind: N, spec: {a: 1}}\n"}},
        {"apiVersion": "y/v1", "kind": "N", "spec": {"a": 1}},
    ),
    "other-namespace": (
        {"data": {"default-ch-config": "namespaceDefaults:\n  other: {apiVersion: y/v1, kind: N}"}},
        backing.FALLBACK,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("configmap", "want"), TEMPLATES.values(), ids=TEMPLATES.keys())
def test_default_template(configmap: Any, want: Any) -> None:
    assert backing.default_template(configmap, "ns") == want


def test_default_template_rejects_garbage() -> None:
    with pytest.raises(backing.TemplateError):
        backing.default_template({"data": {"default-ch-config": "- a\n- b"}}, "ns")


CHANNEL = {"metadata": {"name": "c", "namespace": "ns", "uid": "cu"}, "spec": {}}
ADDRESS = {"name": "http", "url": "http://c-kn-channel.ns.svc.cluster.local"}
PROPAGATIONS: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "not-reconciled-yet": ({}, {"BackingChannelReady": "Unknown", "Addressable": "False"}),
    "ready": (
        {"conditions": [{"type": "Ready", "status": "True"}], "address": ADDRESS},
        {"BackingChannelReady": "True", "Addressable": "True", "DeadLetterSinkResolved": "True"},
    ),
    "failed": (
        {"conditions": [{"type": "Ready", "status": "False", "reason": "R", "message": "m"}]},
        {"BackingChannelReady": "False"},
    ),
}


@pytest.mark.parametrize(("child", "want"), PROPAGATIONS.values(), ids=PROPAGATIONS.keys())
def test_channel_propagates_backing_status(child: dict[str, Any], want: dict[str, str]) -> None:
    status: dict[str, Any] = {}
    conds = reconciler.propagate(
        reconciler.CONDITION_SET.initial((), T0), status, CHANNEL, {"status": child}
    )
    got = {c.type: c.status for c in conds.items}
    assert {k: got[k] for k in want} == want
    if "address" in child:
        assert status["address"] == ADDRESS


SLICES: dict[str, tuple[list[dict[str, Any]], bool]] = {
    "none": ([], False),
    "empty-slice": ([{"endpoints": []}], False),
    "ready": ([{"endpoints": [{"conditions": {"ready": True}}]}], True),
    "ready-unset": ([{"endpoints": [{"conditions": {}}]}], True),
    "not-ready": ([{"endpoints": [{"conditions": {"ready": False}}]}], False),
}


@pytest.mark.parametrize(("slices", "want"), SLICES.values(), ids=SLICES.keys())
def test_dispatcher_endpoints_ready(slices: list[dict[str, Any]], want: bool) -> None:
    assert service.endpoints_ready(slices) is want


def test_channel_service_is_external_name_to_the_dispatcher() -> None:
    svc = service.channel_service(
        {"metadata": {"name": "orders", "namespace": "ns", "uid": "u"}}, "dispatcher", "sys"
    )
    assert svc["metadata"]["name"] == "orders-kn-channel"
    assert svc["spec"]["type"] == "ExternalName"
    assert svc["spec"]["externalName"] == "dispatcher.sys.svc.cluster.local"
    assert svc["metadata"]["ownerReferences"][0]["controller"] is True
    assert service.address("orders", "ns")["url"] == "http://orders-kn-channel.ns.svc.cluster.local"


def test_status_patch_leaves_the_dispatchers_subscribers_alone() -> None:
    old = {"subscribers": [{"uid": "a"}], "address": {"url": "x"}}
    keep = statuses.KEEP | {"subscribers"}
    assert statuses.patch(old, {}, keep) == {"address": None}
    assert statuses.patch(old, {}) == {"address": None, "subscribers": None}
