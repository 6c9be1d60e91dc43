"""Pure parts of the ApiServerSource adapter: config parsing and event shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kevents import errors, informer
from sources.apiserver import config, events


def _raw(**doc: Any) -> str:
    base: dict[str, Any] = {
        "namespaces": ["ns"],
        "resources": [{"gvr": {"Group": "apps", "Version": "v1", "Resource": "deployments"}}],
    }
    base.update(doc)
    return json.dumps(base)


def test_parses_knative_shape() -> None:
    parsed = config.parse(
        _raw(
            resources=[
                {"gvr": {"Group": "", "Version": "v1", "Resource": "pods"}, "selector": "app=x"}
            ],
            owner={"apiVersion": "apps/v1", "kind": "ReplicaSet"},
            mode="Resource",
        )
    )
    assert parsed.resources == (config.Resource("", "v1", "pods", "app=x"),)
    assert parsed.resources[0].api_version == "v1"
    assert parsed.owner == config.Owner("apps/v1", "ReplicaSet")
    assert parsed.mode is config.Mode.RESOURCE
    assert parsed.namespaces == ("ns",)


def test_mode_defaults_to_reference() -> None:
    assert config.parse(_raw()).mode is config.Mode.REFERENCE


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(errors.ConfigError) as info:
        config.parse(json.dumps({"resources": [], "mode": "Everything", "namespaces": "x"}))
    text = str(info.value)
    assert "resources must be a non-empty list" in text
    assert "mode must be Reference or Resource, got 'Everything'" in text
    assert "namespaces must be a list" in text


@pytest.mark.parametrize(
    ("selector", "valid"),
    [
        ("", True),
        ("app=web", True),
        ("app==web,tier!=db", True),
        ("app in (a, b),!legacy", True),
        ("env notin (prod)", True),
        ("example.com/team=core", True),
        ("app", True),
        ("app in (a,", False),
        ("=x", False),
        ("app=we b", False),
        ("app in a", False),
    ],
    ids=lambda v: repr(v),
)
def test_selector_validation(selector: str, valid: bool) -> None:
    assert (config.selector_problem(selector) is None) is valid


@pytest.mark.parametrize(
    ("kind", "plural"),
    [("Pod", "pods"), ("Event", "events"), ("Ingress", "ingresses"), ("Policy", "policies")],
    ids=["pod", "event", "s-suffix", "y-suffix"],
)
def test_plural_guess_matches_kubernetes(kind: str, plural: str) -> None:
    assert events.guess_plural(kind) == plural


@pytest.mark.parametrize(
    ("api_version", "expected"),
    [
        ("v1", "/apis/v1/namespaces/ns/pods/p"),
        ("apps/v1", "/apis/apps/v1/namespaces/ns/pods/p"),
        ("serving.knative.dev", "/apis/serving.knative.dev/versionUnknown/namespaces/ns/pods/p"),
    ],
    ids=["core", "group", "group-without-version"],
)
def test_subject(api_version: str, expected: str) -> None:
    assert events.subject(api_version, "Pod", "ns", "p") == expected


POD = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "resourceVersion": "7"},
    "spec": {"containers": []},
}


@pytest.mark.parametrize(
    ("mode", "change", "type_", "data"),
    [
        (config.Mode.RESOURCE, informer.Change.ADD, "dev.knative.apiserver.resource.add", POD),
        (
            config.Mode.REFERENCE,
            informer.Change.DELETE,
            "dev.knative.apiserver.ref.delete",
            {"kind": "Pod", "namespace": "ns", "name": "p", "apiVersion": "v1"},
        ),
    ],
    ids=["resource-add", "ref-delete"],
)
def test_event_shape(
    mode: config.Mode, change: informer.Change, type_: str, data: dict[str, Any]
) -> None:
    event = events.make(change, POD, source="https://10.96.0.1:443", mode=mode)
    assert event.get_type() == type_
    assert event.get_source() == "https://10.96.0.1:443"
    assert event.get_subject() == "/apis/v1/namespaces/ns/pods/p"
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == data
    assert {k: event.get_extension(k) for k in ("kind", "apiversion", "name", "namespace")} == {
        "kind": "Pod",
        "apiversion": "v1",
        "name": "p",
        "namespace": "ns",
    }


def test_reference_of_cluster_scoped_object_omits_namespace() -> None:
    node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1"}}
    assert events.reference(node) == {"kind": "Node", "name": "n1", "apiVersion": "v1"}


def test_owner_filter() -> None:
    owned = {"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet"}]}}
    owner = config.Owner("apps/v1", "ReplicaSet")
    assert events.owned_by(owned, owner)
    assert not events.owned_by({"metadata": {}}, owner)
    assert not events.owned_by(owned, config.Owner("apps/v1", "Deployment"))
    assert events.owned_by({"metadata": {}}, None)
