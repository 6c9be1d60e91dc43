"""The old `sources.eventing.knative.dev/v1alpha1` specs mapped to today's, as the 2018-2019
docs write them, and the status copied back."""

from __future__ import annotations

from typing import Any

import pytest

from controller.framework import conditions
from controller.legacysources import mapping, reconciler, wiring

SVC = {"apiVersion": "serving.knative.dev/v1alpha1", "kind": "Service", "name": "event-display"}
URL = "http://event-display.default.svc.cluster.local"

SINKS: dict[str, tuple[Any, dict[str, Any]]] = {
    "object-reference": (SVC, {"ref": SVC}),
    "with-namespace": ({**SVC, "namespace": "other"}, {"ref": {**SVC, "namespace": "other"}}),
    "destination-ref": ({"ref": SVC}, {"ref": SVC}),
    "destination-uri": ({"uri": URL}, {"uri": URL}),
    "absent": (None, {}),
}


@pytest.mark.parametrize(("sink", "expected"), SINKS.values(), ids=SINKS.keys())
def test_old_sink_becomes_a_destination(sink: Any, expected: dict[str, Any]) -> None:
    assert mapping.destination(sink) == expected


def test_apiserversource_of_the_2019_tutorial() -> None:
    old = {
        "serviceAccountName": "events-sa",
        "mode": "Resource",
        "resources": [{"apiVersion": "v1", "kind": "Event"}],
        "sink": {"apiVersion": "eventing.knative.dev/v1alpha1", "kind": "Broker",
                 "name": "default"},
    }  # fmt: skip
    assert mapping.apiserversource(old) == {
        "serviceAccountName": "events-sa",
        "mode": "Resource",
        "resources": [{"apiVersion": "v1", "kind": "Event"}],
        "sink": {"ref": {"apiVersion": "eventing.knative.dev/v1alpha1", "kind": "Broker",
                         "name": "default"}},
    }  # fmt: skip


MODES = {"Ref": "Reference", "Resource": "Resource", "absent": "Reference"}


@pytest.mark.parametrize(("old", "new"), MODES.items(), ids=MODES.keys())
def test_apiserversource_mode(old: str, new: str) -> None:
    spec = {"resources": [{"apiVersion": "v1", "kind": "Pod"}], "sink": SVC}
    if old != "absent":
        spec["mode"] = old
    assert mapping.apiserversource(spec)["mode"] == new


def test_apiserversource_label_and_controller_selectors() -> None:
    old = {
        "resources": [{
            "apiVersion": "v1", "kind": "Pod", "controller": True,
            "labelSelector": {"matchLabels": {"app": "web"}},
            "controllerSelector": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x"},
        }],
        "sink": SVC,
    }  # fmt: skip
    new = mapping.apiserversource(old)
    assert new["resources"] == [
        {"apiVersion": "v1", "kind": "Pod", "selector": {"matchLabels": {"app": "web"}}}
    ]
    assert new["owner"] == {"apiVersion": "apps/v1", "kind": "ReplicaSet"}
    assert "serviceAccountName" not in new  # v1's default ("default") applies


NAMESPACES = {
    "own-namespace": ("default", None),
    "absent": ("", None),
    "other-namespace": ("prod", {"matchLabels": {"kubernetes.io/metadata.name": "prod"}}),
}


@pytest.mark.parametrize(("watched", "selector"), NAMESPACES.values(), ids=NAMESPACES.keys())
def test_kubernetes_event_source_watches_events_of_its_namespace(
    watched: str, selector: dict[str, Any] | None
) -> None:
    old = {"namespace": watched, "serviceAccountName": "events-sa", "sink": SVC}
    new = mapping.kuberneteseventsource(old, "default")
    assert new["resources"] == [{"apiVersion": "v1", "kind": "Event"}]
    assert new["mode"] == "Resource"
    assert new["serviceAccountName"] == "events-sa"
    assert new["sink"] == {"ref": SVC}
    assert new.get("namespaceSelector") == selector


HEARTBEATS = "github.com/knative/eventing-sources/cmd/heartbeats"
ARGS = {
    "appended": (["--period=1"], ["--period=1", f"--sink={URL}"]),
    "filled-in-place": (["--sink=", "--period=1"], [f"--sink={URL}", "--period=1"]),
    "replaced": (["--a", "--sink=http://old", "--sink=x"], ["--a", f"--sink={URL}"]),
    "none": ([], [f"--sink={URL}"]),
}


@pytest.mark.parametrize(("args", "expected"), ARGS.values(), ids=ARGS.keys())
def test_containersource_sink_argument(args: list[str], expected: list[str]) -> None:
    new = mapping.containersource({"image": HEARTBEATS, "args": args, "sink": SVC}, URL)
    (container,) = new["template"]["spec"]["containers"]
    assert container["args"] == expected


ENVS: dict[str, tuple[Any, list[dict[str, Any]]]] = {
    "list-2018-docs": (
        [{"name": "POD_NAME", "value": "mypod"}, {"name": "POD_NAMESPACE", "value": "event-test"}],
        [{"name": "POD_NAME", "value": "mypod"}, {"name": "POD_NAMESPACE", "value": "event-test"}],
    ),
    "map": (
        {"LABEL": "hi", "N": 3},
        [{"name": "LABEL", "value": "hi"}, {"name": "N", "value": "3"}],
    ),
    "value-from-kept": (
        [{"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        [{"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    ),
    "old-SINK-replaced": ([{"name": "SINK", "value": "http://old"}], []),
    "absent": (None, []),
}  # fmt: skip


@pytest.mark.parametrize(("env", "expected"), ENVS.values(), ids=ENVS.keys())
def test_containersource_env_list_or_map_plus_sink(env: Any, expected: list[Any]) -> None:
    spec = {"image": HEARTBEATS, "sink": SVC, "serviceAccountName": "sa", "env": env}
    new = mapping.containersource(spec, URL)
    (container,) = new["template"]["spec"]["containers"]
    assert container["env"] == [*expected, {"name": "SINK", "value": URL}]
    assert container["name"] == "source" and container["image"] == HEARTBEATS
    assert new["template"]["spec"]["serviceAccountName"] == "sa"
    assert new["sink"] == {"ref": SVC}


def test_containersource_sink_from_its_argument_when_no_sink_is_given() -> None:
    spec = {"image": HEARTBEATS, "args": ["--sink=http://display.default.svc"]}
    assert mapping.container_sink(spec) == {"uri": "http://display.default.svc"}
    assert mapping.container_sink({"image": HEARTBEATS, "args": ["--sink="]}) == {}


def test_githubsource_keeps_its_fields_and_converts_the_sink() -> None:
    secret = {"secretKeyRef": {"name": "githubsecret", "key": "accessToken"}}
    old = {
        "ownerAndRepository": "octo/repo", "eventTypes": ["pull_request"],
        "accessToken": secret, "secretToken": secret, "secure": False,
        "githubAPIURL": "", "sink": SVC,
    }  # fmt: skip
    assert mapping.githubsource(old) == {
        "ownerAndRepository": "octo/repo", "eventTypes": ["pull_request"],
        "accessToken": secret, "secretToken": secret, "secure": False, "sink": {"ref": SVC},
    }  # fmt: skip


def test_status_conditions_are_copied_verbatim_once_the_new_object_has_them() -> None:
    start = reconciler.CONDITION_SET.initial((), clock="2026-01-01T00:00:00Z")
    waiting = reconciler.copied_conditions(start, {}, "ApiServerSource x")
    ready = waiting.get(conditions.READY)
    assert ready is not None and (ready.status, ready.reason) == ("Unknown", "Mirroring")
    child = {"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "SinkNotFound", "message": "m",
         "lastTransitionTime": "2026-01-02T00:00:00Z"},
        {"type": "SinkProvided", "status": "False", "reason": "SinkNotFound", "message": "m",
         "lastTransitionTime": "2026-01-02T00:00:00Z"},
    ]}}  # fmt: skip
    copied = reconciler.copied_conditions(waiting, child, "ApiServerSource x")
    assert copied.to_list() == sorted(child["status"]["conditions"], key=lambda c: c["type"])


def _owned_by(api_version: str, kind: str, controller: bool = True) -> dict[str, Any]:
    ref = {"apiVersion": api_version, "kind": kind, "name": "old", "controller": controller}
    return {"metadata": {"namespace": "ns", "name": "old", "ownerReferences": [ref]}}


OWNERS = {
    "old-apiserversource": (reconciler.ApiServerSource, _owned_by(reconciler.API_VERSION,
                            "ApiServerSource"), ["ns/old"]),  # fmt: skip
    "old-kubernetes-event-source-not-for-apiserversource": (
        reconciler.ApiServerSource, _owned_by(reconciler.API_VERSION, "KubernetesEventSource"), []
    ),
    "old-kubernetes-event-source": (
        reconciler.KubernetesEventSource,
        _owned_by(reconciler.API_VERSION, "KubernetesEventSource"), ["ns/old"],
    ),
    "today's-kind-of-the-same-name": (
        reconciler.ContainerSource, _owned_by("sources.knative.dev/v1", "ContainerSource"), []
    ),
    "not-the-controller": (
        reconciler.GitHubSource, _owned_by(reconciler.API_VERSION, "GitHubSource", False), []
    ),
}  # fmt: skip


@pytest.mark.parametrize(("kind", "obj", "keys"), OWNERS.values(), ids=OWNERS.keys())
def test_new_objects_wake_up_the_old_kind_that_controls_them(
    kind: type[reconciler.Mirror], obj: dict[str, Any], keys: list[str]
) -> None:
    watch = wiring.mirrored(kind)
    assert list(watch.keys("MODIFIED", obj)) == keys
    assert watch.resource == kind.target
    assert watch.label_selector == (
        f"sources.eventing.knative.dev/mirrored-from={kind.resource.plural}."
        "sources.eventing.knative.dev"
    )
