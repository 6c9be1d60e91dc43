"""The minimal Knative Serving, pure parts: revision names, the Deployment a Revision runs,
the route's selector, routing states on an injected clock, refused traffic, the CRDs."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest
import yaml

from controller.apis import serving as apis
from controller.serving import ownership, resources
from kevents import connections

T0 = datetime.datetime(2026, 12, 2, 5, 0, 0, tzinfo=datetime.UTC)


def config(name: str = "display", generation: int = 1, **template: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name, "namespace": "demo", "uid": "cfg-uid", "generation": generation,
            "labels": {resources.SERVICE_LABEL: name},
        },
        "spec": {"template": template or {"spec": {"containers": [{"image": "img"}]}}},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (config(generation=1), "display-00001"),
        (config(generation=2), "display-00002"),
        (config(generation=123456), "display-123456"),
        (config(metadata={"name": "display-blue"}, spec={}), "display-blue"),
    ],
    ids=["first", "second", "wide", "named-by-user"],
)
def test_revision_name(cfg: dict[str, Any], expected: str) -> None:
    assert resources.revision_name(cfg) == expected


def test_long_revision_names_fit_63_characters_and_keep_the_generation() -> None:
    first = resources.revision_name(config(name="n" * 60, generation=3))
    other = resources.revision_name(config(name="n" * 60 + "x", generation=3))
    assert len(first) <= 63 and first.endswith("-00003") and first != other
    assert resources.deployment_name(first).endswith("-deployment")


@pytest.mark.parametrize(
    ("spec", "image"),
    [
        ({"template": {"spec": {"containers": [{"image": "v1"}]}}}, "v1"),
        (
            {"runLatest": {"configuration": {"revisionTemplate": {
                "spec": {"containers": [{"image": "v1alpha1"}]}}}}},
            "v1alpha1",
        ),
        (
            {"runLatest": {"configuration": {"revisionTemplate": {
                "spec": {"container": {"image": "v1alpha1-2019"}}}}}},
            "v1alpha1-2019",
        ),
        ({"template": {"spec": {"container": {"image": "single"}}}}, "single"),
    ],
    ids=["template", "v1alpha1-runLatest", "v1alpha1-single-container", "template-single"],
)  # fmt: skip
def test_template_of_reads_both_shapes(spec: dict[str, Any], image: str) -> None:
    template = resources.template_of(spec)
    assert [c["image"] for c in template["spec"]["containers"]] == [image]
    assert "container" not in template["spec"]


def revision(**spec: Any) -> dict[str, Any]:
    body = resources.revision(config(spec=spec))
    body["metadata"]["uid"] = "rev-uid"
    return body


def test_deployment_runs_user_container_with_knative_contract() -> None:
    rev = revision(
        containers=[{
            "image": "img", "ports": [{"containerPort": 9000, "name": "h2c"}],
            "env": [{"name": "PORT", "value": "1"}, {"name": "FOO", "value": "bar"}],
        }],
        containerConcurrency=0, timeoutSeconds=300,
    )  # fmt: skip
    dep = resources.deployment(rev, 1)
    assert dep["metadata"]["name"] == "display-00001-deployment"
    assert dep["spec"]["replicas"] == 1
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert labels[resources.SERVICE_LABEL] == "display"
    assert labels[resources.CONFIGURATION_LABEL] == "display"
    assert labels[resources.REVISION_LABEL] == "display-00001"
    assert resources.ROUTING_STATE_LABEL not in labels  # would restart pods when it changes
    assert dep["spec"]["selector"] == {"matchLabels": {resources.REVISION_UID_LABEL: "rev-uid"}}
    assert "containerConcurrency" not in pod["spec"] and "timeoutSeconds" not in pod["spec"]
    (user,) = pod["spec"]["containers"]
    assert user["name"] == "user-container"
    assert user["ports"] == [{"name": "user-port", "containerPort": 9000, "protocol": "TCP"}]
    assert user["env"] == [
        {"name": "FOO", "value": "bar"},
        {"name": "PORT", "value": "9000"},
        {"name": "K_REVISION", "value": "display-00001"},
        {"name": "K_CONFIGURATION", "value": "display"},
        {"name": "K_SERVICE", "value": "display"},
    ]
    assert user["readinessProbe"]["tcpSocket"] == {"port": 9000}


def test_deployment_defaults_port_8080_and_keeps_names_and_probes() -> None:
    rev = revision(containers=[
        {"name": "sidecar", "image": "side"},
        {"name": "web", "image": "img", "ports": [{"containerPort": 8080}],
         "readinessProbe": {"httpGet": {"path": "/healthz"}}},
    ])  # fmt: skip
    side, web = resources.deployment(rev, 0)["spec"]["template"]["spec"]["containers"]
    assert side == {"name": "sidecar", "image": "side"}
    assert web["name"] == "web"
    assert web["readinessProbe"] == {"httpGet": {"path": "/healthz", "port": 8080}}
    only = resources.deployment(revision(containers=[{"image": "i"}]), 1)
    (user,) = only["spec"]["template"]["spec"]["containers"]
    assert {"name": "PORT", "value": "8080"} in user["env"]
    assert user["ports"][0]["containerPort"] == 8080


def reserved(since: datetime.datetime | None) -> dict[str, Any]:
    rev = revision(containers=[{"image": "i"}])
    rev["metadata"]["labels"][resources.ROUTING_STATE_LABEL] = resources.RESERVE
    if since is not None:
        stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        rev["metadata"]["annotations"] = {resources.ROUTING_STATE_MODIFIED: stamp}
    return rev


@pytest.mark.parametrize(
    ("rev", "after", "expected"),
    [
        (revision(containers=[{"image": "i"}]), 0.0, (1, None)),
        (reserved(T0), 0.0, (1, resources.RESERVE_GRACE)),
        (reserved(T0), 4.0, (1, resources.RESERVE_GRACE - 4.0)),
        (reserved(T0), resources.RESERVE_GRACE, (0, None)),
        (reserved(None), 0.0, (0, None)),
    ],
    ids=["active", "just-left", "draining", "grace-over", "unstamped"],
)
def test_desired_replicas(rev: dict[str, Any], after: float, expected: tuple[int, Any]) -> None:
    assert resources.desired_replicas(rev, T0.timestamp() + after) == expected


def test_leaving_the_route_keeps_the_running_pod() -> None:
    """The routing state is not part of the pod template: moving a revision to reserve only
    scales its Deployment later, it does not roll out a new pod that replaces the one still
    answering the requests sent before the switch."""
    active = revision(containers=[{"image": "i"}])
    active["metadata"]["annotations"] = {"example.com/kept": "yes"}
    active["metadata"]["resourceVersion"] = "7"
    patch = resources.routing_patch(active, False, "2026-12-02T05:00:00Z")
    assert patch is not None
    reserve = copy.deepcopy(active)
    reserve["metadata"]["labels"].update(patch["metadata"]["labels"])
    reserve["metadata"]["annotations"].update(patch["metadata"]["annotations"])
    before, after = resources.deployment(active, 1), resources.deployment(reserve, 1)
    assert after == before
    assert after["spec"]["template"]["metadata"]["annotations"] == {"example.com/kept": "yes"}


def test_reserve_grace_outlasts_kept_alive_connections() -> None:
    # Connections opened before the switch keep reaching the old pod until retired.
    assert resources.RESERVE_GRACE > connections.MAX_AGE_SECONDS + 1


def test_routing_patch_moves_only_what_changes() -> None:
    rev = revision(containers=[{"image": "i"}])
    rev["metadata"]["resourceVersion"] = "7"
    assert resources.routing_patch(rev, True, "t") is None
    assert resources.routing_patch(rev, False, "2026-12-02T05:00:00Z") == {
        "metadata": {
            "resourceVersion": "7",
            "labels": {resources.ROUTING_STATE_LABEL: "reserve"},
            "annotations": {resources.ROUTING_STATE_MODIFIED: "2026-12-02T05:00:00Z"},
        }
    }


def test_route_selects_latest_ready_revision() -> None:
    svc = {"metadata": {"name": "display", "namespace": "demo", "uid": "svc-uid"}}
    before = resources.kubernetes_service(svc, None)["spec"]
    assert before["selector"] == {resources.SERVICE_LABEL: "display"}
    after = resources.kubernetes_service(svc, "display-00002")["spec"]
    assert after["selector"] == {
        resources.SERVICE_LABEL: "display", resources.REVISION_LABEL: "display-00002"
    }  # fmt: skip
    assert after["ports"] == [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "user-port"}
    ]


def ready_rev(name: str, generation: int, ready: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {resources.GENERATION_LABEL: str(generation)}},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def test_latest_ready_is_the_highest_ready_generation() -> None:
    revs = [ready_rev("a-00002", 2, "True"), ready_rev("a-00010", 10, "True"),
            ready_rev("a-00011", 11, "Unknown")]  # fmt: skip
    assert resources.latest_ready(revs) == "a-00010"
    assert resources.latest_ready([ready_rev("a-00001", 1, "False")]) is None


@pytest.mark.parametrize(
    ("revs", "previous", "expected"),
    [
        ([ready_rev("a-00001", 1, "True"), ready_rev("a-00002", 2, "Unknown")], "a-00002",
         "a-00002"),
        ([ready_rev("a-00001", 1, "True"), ready_rev("a-00002", 2, "True")], "a-00001",
         "a-00002"),
        ([ready_rev("a-00001", 1, "True"), ready_rev("a-00003", 3, "Unknown")], "a-00002",
         "a-00001"),
    ],
    ids=["routed-pod-restarting-keeps-route", "newer-ready-moves-forward", "previous-deleted"],
)  # fmt: skip
def test_latest_ready_never_moves_back(
    revs: list[dict[str, Any]], previous: str, expected: str
) -> None:
    assert resources.latest_ready(revs, previous) == expected


@pytest.mark.parametrize(
    ("traffic", "refused"),
    [
        (None, False),
        ([{"latestRevision": True, "percent": 100}], False),
        ([{"latestRevision": True, "percent": 50}, {"revisionName": "x", "percent": 50}], True),
        ([{"revisionName": "x-00001", "percent": 100}], True),
        ([{"latestRevision": True, "percent": 90}], True),
        ([{"tag": "blue", "latestRevision": True}], True),
    ],
    ids=["none", "latest", "split", "pinned", "partial", "tagged"],
)
def test_traffic_problems(traffic: list[dict[str, Any]] | None, refused: bool) -> None:
    assert bool(resources.traffic_problems({"traffic": traffic})) == refused


def test_ownership_reads_the_crd_label() -> None:
    ours = yaml.safe_load(yaml.safe_dump(apis.service()))
    assert ownership.is_ours(ours)
    knative = {"metadata": {"name": "services.serving.knative.dev", "labels": {
        "serving.knative.dev/release": "v1.18.0"}}}  # fmt: skip
    assert not ownership.is_ours(knative)
    assert not ownership.is_ours(None)


def test_ksvc_crd_is_what_kubectl_and_old_yaml_expect() -> None:
    crd = apis.service()
    spec = crd["spec"]
    assert spec["names"]["shortNames"] == ["kservice", "ksvc"]
    assert set(spec["names"]["categories"]) == {"all", "knative", "serving"}
    assert [v["name"] for v in spec["versions"]] == ["v1alpha1", "v1beta1", "v1"]
    assert [v["name"] for v in spec["versions"] if v["storage"]] == ["v1"]
    columns = [c["name"] for c in spec["versions"][-1]["additionalPrinterColumns"]]
    assert columns == ["URL", "LatestCreated", "LatestReady", "Ready", "Reason"]
    assert crd["metadata"]["labels"]["duck.knative.dev/addressable"] == "true"
