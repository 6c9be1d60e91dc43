"""The desired receive adapter: name, K_SOURCE_CONFIG, env contract, Deployment shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.apiserversource import adapter
from kevents import kubeapi

EVENTS = kubeapi.Resource("", "v1", "events")
DEPLOYS = kubeapi.Resource("apps", "v1", "deployments")
UID = "0b4ef1d5-6f9a-4e43-9b6e-0a3c2f6b8e11"


@pytest.mark.parametrize(
    ("parent", "suffix", "want"),
    [
        ("asdf", "-deployment", "asdf-deployment"),
        (
            "f" * 63,
            "-deployment",
            "ffffffffffffffffffff105d7597f637e83cc711605ac3ea4957-deployment",
        ),
        ("f" * 63, "-deploy", "ffffffffffffffffffffffff105d7597f637e83cc711605ac3ea4957-deploy"),
    ],
    ids=["short", "long-deployment", "long-deploy"],
)
def test_child_name_matches_kmeta(parent: str, suffix: str, want: str) -> None:
    assert adapter.child_name(parent, suffix) == want
    assert len(adapter.child_name(parent, suffix)) <= 63


def test_deployment_name() -> None:
    assert adapter.deployment_name("s", UID) == f"apiserversource-s-{UID}"
    long = adapter.deployment_name("a-rather-long-source-name", UID)
    assert len(long) == 63
    assert long.startswith("apiserversource-a-rather-long-")
    assert long != adapter.deployment_name("a-rather-long-source-namf", UID)


SELECTORS: dict[str, tuple[Any, str]] = {
    "none": (None, ""),
    "empty": ({}, ""),
    "labels-sorted": ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    "in-values-sorted": (
        {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]},
        "env in (dev,prod)",
    ),
    "notin": ({"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["y"]}]},
              "x notin (y)"),
    "exists-and-not": (
        {"matchExpressions": [{"key": "z", "operator": "Exists"},
                              {"key": "a", "operator": "DoesNotExist"}]},
        "!a,z",
    ),
    "mixed-sorted-by-key": (
        {"matchLabels": {"m": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
        "b,m=1",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("selector", "want"), SELECTORS.values(), ids=SELECTORS.keys())
def test_selector_string(selector: Any, want: str) -> None:
    assert adapter.selector_string(selector) == want


CONFIGS: dict[str, tuple[dict[str, Any], str]] = {
    "one-namespace": (
        {"watches": [adapter.Watch(EVENTS)], "namespaces": ["ns"], "all_namespaces": False,
         "mode": "Reference"},
        '{"namespaces":["ns"],"allNamespaces":false,"resources":[{"gvr":{"Group":"",'
        '"Version":"v1","Resource":"events"}}],"mode":"Reference"}',
    ),
    "selector-owner-all-namespaces": (
        {"watches": [adapter.Watch(DEPLOYS, {"matchLabels": {"app": "a"}})],
         "namespaces": ["a", "b"], "all_namespaces": True, "mode": "Resource",
         "owner": {"apiVersion": "apps/v1", "kind": "ReplicaSet"}},
        '{"namespaces":["a","b"],"allNamespaces":true,"resources":[{"gvr":{"Group":"apps",'
        '"Version":"v1","Resource":"deployments"},"selector":"app=a"}],'
        '"owner":{"apiVersion":"apps/v1","kind":"ReplicaSet"},"mode":"Resource"}',
    ),
    "html-escaped-like-go": (
        {"watches": [adapter.Watch(EVENTS, {"matchLabels": {"k": "<&>"}})],
         "namespaces": ["ns"], "all_namespaces": False, "mode": "Reference"},
        '{"namespaces":["ns"],"allNamespaces":false,"resources":[{"gvr":{"Group":"",'
        '"Version":"v1","Resource":"events"},"selector":"k=\\u003c\\u0026\\u003e"}],'
        '"mode":"Reference"}',
    ),
}  # fmt: skip


@pytest.mark.parametrize(("args", "want"), CONFIGS.values(), ids=CONFIGS.keys())
def test_source_config_json(args: dict[str, Any], want: str) -> None:
    watches = args.pop("watches")
    assert adapter.source_config(watches, **args) == want


CONFIG = adapter.AdapterConfig(image="img", system_namespace="kevents-system")


def inputs(**changes: Any) -> adapter.Inputs:
    base: dict[str, Any] = {
        "name": "src", "namespace": "ns", "uid": UID, "service_account": "sa",
        "sink_uri": "http://sink.ns.svc.cluster.local", "source_config": "{}",
    }  # fmt: skip
    return adapter.Inputs(**{**base, **changes})


ENVS: dict[str, tuple[adapter.Inputs, list[str]]] = {
    "minimal": (inputs(), []),
    "ce-overrides": (inputs(ce_overrides={"extensions": {"a": "b"}}), ["K_CE_OVERRIDES"]),
    "tls-and-oidc": (inputs(sink_ca_certs="PEM", sink_audience="aud"),
                     ["K_CA_CERTS", "K_AUDIENCE"]),
}  # fmt: skip
BASE_ENV = ["K_SINK", "K_SOURCE_CONFIG", "SYSTEM_NAMESPACE", "NAMESPACE", "NAME", "METRICS_DOMAIN"]
CONFIG_ENV = ["K_LOGGING_CONFIG", "K_METRICS_CONFIG", "K_TRACING_CONFIG"]


@pytest.mark.parametrize(("given", "extra"), ENVS.values(), ids=ENVS.keys())
def test_env_contract_order_and_optional_vars(given: adapter.Inputs, extra: list[str]) -> None:
    names = [e["name"] for e in adapter.env(given, CONFIG)]
    tls = [n for n in extra if n in ("K_CA_CERTS", "K_AUDIENCE")]
    tail = [n for n in extra if n == "K_CE_OVERRIDES"]
    assert names == BASE_ENV + tls + CONFIG_ENV + tail + ["K_SOURCE_UID"]


def test_env_values() -> None:
    env = {
        e["name"]: e for e in adapter.env(inputs(ce_overrides={"extensions": {"a": "b"}}), CONFIG)
    }
    assert env["K_SINK"]["value"] == "http://sink.ns.svc.cluster.local"
    assert env["NAMESPACE"] == {
        "name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    }  # fmt: skip
    assert env["SYSTEM_NAMESPACE"]["value"] == "kevents-system"
    assert env["METRICS_DOMAIN"]["value"] == "knative.dev/eventing"
    assert json.loads(env["K_CE_OVERRIDES"]["value"]) == {"extensions": {"a": "b"}}


def test_desired_deployment_shape() -> None:
    dep = adapter.deployment(inputs(), CONFIG)
    meta, spec = dep["metadata"], dep["spec"]
    assert meta["name"] == f"apiserversource-src-{UID}"
    assert meta["ownerReferences"][0]["uid"] == UID
    assert meta["ownerReferences"][0]["controller"] is True
    assert (
        spec["selector"]["matchLabels"]
        == spec["template"]["metadata"]["labels"]
        == {
            "eventing.knative.dev/source": "apiserver-source-controller",
            "eventing.knative.dev/sourceName": "src",
        }
    )
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "sa"
    (container,) = pod["containers"]
    assert container["name"] == "receive-adapter"
    assert container["ports"] == [
        {"name": "metrics", "containerPort": 9090},
        {"name": "probes", "containerPort": 8080},
    ]
    assert container["readinessProbe"]["httpGet"] == {"port": "probes", "path": "/readiness"}
    assert container["livenessProbe"]["httpGet"] == {"port": "probes", "path": "/health"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"]
    assert not security["allowPrivilegeEscalation"]
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
