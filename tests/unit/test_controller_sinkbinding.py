"""SinkBinding pure parts: subjects and label selectors, env injection (Undo then Do), the
admission mutation, certificates and caBundle, ContainerSource children."""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any

import pytest
from cryptography import x509

from controller.containersource import resources
from controller.sinkbinding import admission, binder, certificates, injection, subjects, webhook

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)
SINK = injection.Sink("http://sink.ns.svc.cluster.local", None, '{"extensions":{"a":"1"}}')


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"app": "a"}}, {"app": "a", "x": "y"}, True),
        ({"matchLabels": {"app": "a"}}, {"app": "b"}, False),
        ({"matchExpressions": [{"key": "t", "operator": "In", "values": ["1", "2"]}]},
         {"t": "2"}, True),
        ({"matchExpressions": [{"key": "t", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "t", "operator": "Exists"}]}, {"t": ""}, True),
        ({"matchExpressions": [{"key": "t", "operator": "DoesNotExist"}]}, {"t": ""}, False),
    ],
    ids=["empty", "labels", "labels-differ", "in", "in-missing", "notin-missing", "exists",
         "does-not-exist"],
)  # fmt: skip
def test_label_selector_semantics(
    selector: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    assert subjects.matches(selector, labels) is expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"apiVersion": "apps/v1beta1", "kind": "Deployment", "name": "x"}, "cannot be bound"),
        ({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "x"},
         "cannot be bound"),
        ({"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "namespace": "other"},
         "differs from the SinkBinding's namespace"),
        ({"apiVersion": "apps/v1", "kind": "Deployment"}, "exactly one of"),
        ({"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "selector": {}},
         "exactly one of"),
        ({"apiVersion": "apps/v1", "kind": "Deployment",
          "selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
         '"Near" is not a valid'),
    ],
    ids=["old-version", "knative-service", "namespace", "neither", "both", "operator"],
)  # fmt: skip
def test_invalid_subjects_say_why(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(subjects.InvalidSubject, match=problem):
        subjects.parse(raw, "ns")


def test_subject_by_name_and_pod_spec_paths() -> None:
    subject = subjects.parse({"apiVersion": "batch/v1", "kind": "CronJob", "name": "n"}, "ns")
    assert subject.spec.pod_spec == ("spec", "jobTemplate", "spec", "template", "spec")
    assert subject.selects({"metadata": {"name": "n"}})
    assert not subject.selects({"metadata": {"name": "m"}})
    assert not subjects.parse({"apiVersion": "v1", "kind": "Pod", "name": "p"}, "ns").spec.mutable


def test_rebind_removes_old_values_then_appends_in_knative_order() -> None:
    container = {"name": "c", "env": [
        {"name": "K_SINK", "value": "old"}, {"name": "A", "value": "1"},
        {"name": "K_CA_CERTS", "value": "old-pem"}, {"name": "K_CE_OVERRIDES", "value": "{}"},
    ]}  # fmt: skip
    sink = injection.Sink("http://new", "PEM", "")
    assert injection.rebind(container, sink)["env"] == [
        {"name": "A", "value": "1"},
        {"name": "K_SINK", "value": "http://new"},
        {"name": "K_CA_CERTS", "value": "PEM"},
        {"name": "K_CE_OVERRIDES"},  # empty: stored without a value, as the apiserver does
    ]
    assert injection.rebind(container, None)["env"] == [{"name": "A", "value": "1"}]
    assert "env" not in injection.rebind({"name": "c", "env": [{"name": "K_SINK"}]}, None)
    assert container["env"][0] == {"name": "K_SINK", "value": "old"}  # input untouched


def test_ce_overrides_json_is_go_compatible() -> None:
    assert injection.ce_overrides_json(None) == ""
    assert injection.ce_overrides_json({}) == "{}"
    assert injection.ce_overrides_json({"extensions": {"b": "2", "a": "1"}}) == (
        '{"extensions":{"a":"1","b":"2"}}'
    )


def deployment(**labels: str) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "i"}
    return {
        "metadata": {"name": "d", "namespace": "ns", "labels": labels, "resourceVersion": "7"},
        "spec": {"template": {"spec": {"containers": [container],
                                       "initContainers": [{"name": "i", "image": "i"}]}}},
    }  # fmt: skip


def test_desired_is_none_once_bound_and_patches_carry_the_resource_version() -> None:
    path = ("spec", "template", "spec")
    lists = injection.desired(deployment(), path, SINK)
    assert lists is not None
    assert lists["containers"][0]["env"][0] == {"name": "K_SINK", "value": SINK.url}
    assert lists["initContainers"][0]["env"][0] == {"name": "K_SINK", "value": SINK.url}
    bound = deployment()
    bound["spec"]["template"]["spec"].update(lists)
    assert injection.desired(bound, path, SINK) is None
    assert injection.merge_patch(path, {"containers": []}, "7") == {
        "spec": {"template": {"spec": {"containers": []}}}, "metadata": {"resourceVersion": "7"},
    }  # fmt: skip
    assert injection.json_patch(("spec",), {"containers": []}) == [
        {"op": "replace", "path": "/spec/containers", "value": []}
    ]


def binding(name: str, sink: str | None, selector: dict[str, Any], *, kind: str = "Deployment",
            deleting: bool = False) -> dict[str, Any]:  # fmt: skip
    meta: dict[str, Any] = {"name": name, "namespace": "ns"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-23T12:00:00Z"
    api_version = "v1" if kind == "Pod" else "apps/v1"
    return {
        "metadata": meta,
        "spec": {"subject": {"apiVersion": api_version, "kind": kind,
                             "selector": {"matchLabels": selector}}},
        "status": {"sinkUri": sink} if sink else {},
    }  # fmt: skip


def sinks_in(patch: list[dict[str, Any]] | None) -> list[str]:
    assert patch is not None
    containers = next(op["value"] for op in patch if op["path"].endswith("/containers"))
    return [e.get("value", "") for e in containers[0]["env"] if e["name"] == "K_SINK"]


def test_admission_picks_the_recorded_or_else_the_first_live_resolved_selecting_binding() -> None:
    obj = deployment(app="a")
    bindings = [
        binding("b-second", "http://second", {"app": "a"}),
        binding("a-first", "http://first", {"app": "a"}),
        binding("c-deleting", "http://deleting", {"app": "a"}, deleting=True),
        binding("d-unresolved", None, {"app": "a"}),
        binding("e-other", "http://other", {"app": "b"}),
        binding("f-pods", "http://pods", {"app": "a"}, kind="Pod"),
    ]
    patch = admission.mutate("apps", "Deployment", "ns", obj, bindings)
    assert sinks_in(patch) == ["http://first"]
    assert patch is not None and patch[-1] == {
        "op": "add", "path": "/metadata/annotations", "value": {binder.ANNOTATION: "a-first"}
    }  # fmt: skip
    owned = deployment(app="a")
    owned["metadata"]["annotations"] = {binder.ANNOTATION: "b-second", "x": "y"}
    patch = admission.mutate("apps", "Deployment", "ns", owned, bindings)
    assert sinks_in(patch) == ["http://second"]  # its recorded binding keeps it
    assert patch is not None and patch[-1]["path"] == (
        "/metadata/annotations/sinkbindings.sources.knative.dev~1binding"
    )
    owned["metadata"]["annotations"][binder.ANNOTATION] = "c-deleting"
    assert sinks_in(admission.mutate("apps", "Deployment", "ns", owned, bindings)) == [
        "http://first"  # a gone binding's record does not hold the object
    ]
    assert admission.mutate("apps", "Deployment", "ns", deployment(app="b"), bindings[:4]) is None
    excluded = deployment(app="a", **{"bindings.knative.dev/exclude": "true"})
    assert admission.mutate("apps", "Deployment", "ns", excluded, bindings) is None
    assert admission.mutate("", "Service", "ns", obj, bindings) is None
    pod = {"metadata": {"name": "p", "labels": {"app": "a"}},
           "spec": {"containers": [{"name": "c"}]}}  # fmt: skip
    patch = admission.mutate("", "Pod", "ns", pod, bindings)
    assert patch is not None and patch[0]["path"] == "/spec/containers"
    assert sinks_in(patch) == ["http://pods"]


def test_admission_response_is_a_base64_json_patch() -> None:
    out = admission.review_response("u1", [{"op": "replace", "path": "/a", "value": 1}])
    assert out["response"]["uid"] == "u1" and out["response"]["allowed"] is True
    assert out["response"]["patchType"] == "JSONPatch"
    assert admission.review_response("u2", None)["response"] == {"uid": "u2", "allowed": True}


HOSTS = certificates.hosts_of("kevents-webhook", "kevents-system", ["127.0.0.1"])


def test_certificate_names_the_service_and_ip_and_is_signed_by_the_ca() -> None:
    bundle = certificates.generate(HOSTS, datetime.timedelta(days=7), NOW)
    server = x509.load_pem_x509_certificate(bundle.server_cert)
    ca = x509.load_pem_x509_certificate(bundle.ca_cert)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [
        "kevents-webhook.kevents-system.svc", "kevents-webhook.kevents-system.svc.cluster.local"
    ]  # fmt: skip
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    server.verify_directly_issued_by(ca)
    assert certificates.expiry(bundle) == NOW + datetime.timedelta(days=7)


def test_rotation_is_due_near_expiry_for_other_hosts_and_unreadable_sets() -> None:
    renew = datetime.timedelta(days=2)
    bundle = certificates.generate(HOSTS, datetime.timedelta(days=7), NOW)
    assert certificates.due(bundle, HOSTS, renew, NOW + datetime.timedelta(days=4)) is None
    late = certificates.due(bundle, HOSTS, renew, NOW + datetime.timedelta(days=5, seconds=1))
    assert late is not None and "expires" in late
    assert "names" in (certificates.due(bundle, ("other.svc",), renew, NOW) or "")
    assert certificates.due(None, HOSTS, renew, NOW) == "no certificate yet"
    broken = certificates.Bundle(b"junk", bundle.server_cert, bundle.server_key)
    assert "unreadable" in (certificates.due(broken, HOSTS, renew, NOW) or "")
    assert certificates.Bundle.from_data(bundle.to_data()) == bundle
    assert certificates.Bundle.from_data({}) is None


def test_ca_bundle_keeps_the_previous_ca_while_it_is_valid() -> None:
    now = datetime.datetime.now(datetime.UTC)
    old = certificates.generate(HOSTS, datetime.timedelta(days=1), now)
    new = certificates.generate(HOSTS, datetime.timedelta(days=7), now)
    expired = certificates.generate(HOSTS, datetime.timedelta(seconds=1), now - datetime.timedelta(
        days=1))  # fmt: skip
    assert webhook.ca_bundle(new.ca_cert, b"") == new.ca_cert
    assert webhook.ca_bundle(new.ca_cert, old.ca_cert) == new.ca_cert + old.ca_cert
    assert webhook.ca_bundle(new.ca_cert, new.ca_cert + old.ca_cert) == new.ca_cert + old.ca_cert
    assert webhook.ca_bundle(new.ca_cert, expired.ca_cert) == new.ca_cert
    assert webhook.ca_bundle(new.ca_cert, b"not pem") == new.ca_cert


def source(name: str = "beats") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": "u-1"},
        "spec": {
            "sink": {"uri": "http://sink"},
            "ceOverrides": {"extensions": {"a": "1"}},
            "template": {"metadata": {"labels": {"mine": "yes"}}, "spec": {"containers": [
                {"name": "c", "image": "i", "env": [{"name": "CE_TYPE", "value": "t"},
                                                    {"name": "CE_SOURCE", "value": "s"}]}]}},
        },
    }  # fmt: skip


def test_container_source_children() -> None:
    dep = resources.deployment(source(), SINK)
    assert dep["metadata"]["name"] == "beats-deployment"
    assert dep["metadata"]["labels"]["bindings.knative.dev/include"] == "true"
    assert dep["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert dep["spec"]["selector"]["matchLabels"] == resources.labels("beats")
    assert dep["spec"]["template"]["metadata"]["labels"] == {
        "mine": "yes",
        **resources.labels("beats"),
    }
    env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["CE_TYPE", "CE_SOURCE", "K_SINK", "K_CE_OVERRIDES"]
    sb = resources.sinkbinding(source())
    assert sb["metadata"]["name"] == "beats-sinkbinding"
    assert sb["spec"] == {
        "sink": {"uri": "http://sink"}, "ceOverrides": {"extensions": {"a": "1"}},
        "subject": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ns",
                    "name": "beats-deployment"},
    }  # fmt: skip
    assert resources.ce_attributes(source()) == [{"type": "t", "source": "s"}]
    long = resources.deployment_name("x" * 60)
    assert len(long) == 63 and long.endswith("-deployment")


def test_plan_binds_free_or_own_objects_and_releases_only_its_own() -> None:
    path = ("spec", "template", "spec")
    free = deployment(app="a")
    todo = binder.plan(free, path, "mine", SINK)
    assert todo is not None and todo.owner == "mine" and todo.lists["containers"]
    other = deployment(app="a")
    other["metadata"]["annotations"] = {binder.ANNOTATION: "theirs"}
    assert binder.plan(other, path, "mine", SINK) is None
    assert binder.plan(other, path, "mine", None) is None
    bound = deployment(app="a")
    bound["spec"]["template"]["spec"].update(todo.lists)
    bound["metadata"]["annotations"] = {binder.ANNOTATION: "mine"}
    assert binder.plan(bound, path, "mine", SINK) is None  # nothing to do: no write
    release = binder.plan(bound, path, "mine", None)
    assert release is not None and release.owner is None
    assert "env" not in release.lists["containers"][0]
    assert binder.merge_patch(path, release, "9")["metadata"] == {
        "resourceVersion": "9", "annotations": {binder.ANNOTATION: None}
    }  # fmt: skip
    only_annotation = binder.merge_patch(path, binder.Plan({}, "mine"), "9")
    assert "spec" not in only_annotation
    opted_out = deployment(app="a", **{"bindings.knative.dev/exclude": "true"})
    assert binder.plan(opted_out, path, "mine", SINK) is None
