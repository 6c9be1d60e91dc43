"""Container env as the kubelet builds it: valueFrom, envFrom, service links, $(VAR)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from hack.agent import envvars, errors, quantities

POD: dict[str, Any] = {
    "metadata": {
        "name": "web-1",
        "namespace": "shop",
        "uid": "1234",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"note": 'say "hi"'},
    },
    "spec": {
        "nodeName": "kevents-node-0",
        "serviceAccountName": "robot",
        "containers": [
            {
                "name": "app",
                "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}},
            }
        ],
    },
    "status": {"podIP": "10.244.0.7", "hostIP": "127.0.0.1"},
}


def _secret(**data: str) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


SOURCES = envvars.Sources(
    pod=POD,
    configmaps={"settings": {"data": {"LEVEL": "debug", "bad key": "x"}}, "gone": None},
    secrets={"creds": _secret(password="s3cret", token="t0k")},
    allocatable={"cpu": "2", "memory": "8Gi"},
)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("$(A)-$(B)", {"A": "1", "B": "2"}, "1-2"),
        ("$(MISSING) stays", {}, "$(MISSING) stays"),
        ("$$(A) is escaped", {"A": "1"}, "$(A) is escaped"),
        ("cost: $5", {}, "cost: $5"),
        ("open $(A", {"A": "1"}, "open $(A"),
        ("trailing $", {}, "trailing $"),
        ("$()", {}, "$()"),
    ],
    ids=["two", "missing", "escape", "dollar-other", "unclosed", "trailing", "empty-name"],
)
def test_expand(text: str, env: dict[str, str], expected: str) -> None:
    assert envvars.expand(text, env) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("metadata.name", "web-1"),
        ("metadata.namespace", "shop"),
        ("metadata.uid", "1234"),
        ("metadata.labels['app']", "web"),
        ("metadata.annotations['note']", 'say "hi"'),
        ("metadata.labels", 'app="web"\ntier="front"'),
        ("spec.nodeName", "kevents-node-0"),
        ("spec.serviceAccountName", "robot"),
        ("status.podIP", "10.244.0.7"),
        ("status.hostIP", "127.0.0.1"),
    ],
    ids=lambda v: str(v),
)
def test_field_values(path: str, expected: str) -> None:
    assert envvars.field_value(POD, path) == expected


def test_build_resolves_every_kind_of_value_in_order() -> None:
    container = {
        "name": "app",
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "URL", "value": "http://$(POD):$(PORT)/$(KUBERNETES_SERVICE_HOST)"},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "LVL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LEVEL"}}},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {
                "name": "CPU_REQ_M",
                "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}},
            },
            {
                "name": "OPT",
                "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope", "optional": True}},
            },
        ],
    }
    env = envvars.build(container, SOURCES, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    assert env == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "CFG_LEVEL": "debug",
        "POD": "web-1",
        "URL": "http://web-1:$(PORT)/10.96.0.1",
        "PASS": "s3cret",
        "LVL": "debug",
        "MEM": "64",
        "CPU": "2",
        "CPU_REQ_M": "250",
    }


@pytest.mark.parametrize(
    ("var", "message"),
    [
        (
            {"secretKeyRef": {"name": "creds", "key": "nope"}},
            "couldn't find key nope in secret creds",
        ),
        ({"configMapKeyRef": {"name": "gone", "key": "x"}}, 'configmap "gone" not found'),
        ({"fieldRef": {"fieldPath": "spec.bogus"}}, "unsupported fieldRef"),
    ],
    ids=["missing-key", "missing-configmap", "bad-field"],
)
def test_build_reports_what_is_missing(var: dict[str, Any], message: str) -> None:
    container = {"name": "app", "env": [{"name": "X", "valueFrom": var}]}
    with pytest.raises(errors.ContainerConfigError, match=message):
        envvars.build(container, SOURCES, {})


def test_env_from_secret_and_references() -> None:
    container = {
        "name": "app",
        "envFrom": [
            {"secretRef": {"name": "creds"}},
            {"configMapRef": {"name": "gone", "optional": True}},
        ],
        "env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LEVEL"}}}
        ],
    }
    assert envvars.build(container, SOURCES, {}) == {
        "password": "s3cret",
        "token": "t0k",
        "A": "debug",
    }
    assert envvars.references(container) == ({"gone", "settings"}, {"creds"})


def test_service_links() -> None:
    services: list[dict[str, Any]] = [
        {
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]},
        },
        {
            "metadata": {"name": "my-web", "namespace": "shop"},
            "spec": {"clusterIP": "10.96.3.4", "ports": [{"name": "http", "port": 80}]},
        },
        {"metadata": {"name": "headless", "namespace": "shop"}, "spec": {"clusterIP": "None"}},
    ]
    env = envvars.service_links(services, enable_links=True, namespace="shop")
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["MY_WEB_SERVICE_HOST"] == "10.96.3.4"
    assert env["MY_WEB_PORT_80_TCP"] == "tcp://10.96.3.4:80"
    assert not any(k.startswith("HEADLESS") for k in env)
    only_master = envvars.service_links(services, enable_links=False, namespace="shop")
    assert set(only_master) == {k for k in env if k.startswith("KUBERNETES_")}


@pytest.mark.parametrize(
    ("value", "divisor", "expected"),
    [
        ("250m", None, "1"),
        ("64Mi", "1Mi", "64"),
        ("1G", "1M", "1000"),
        ("1.5", "1m", "1500"),
        ("1e3", None, "1000"),
    ],
)
def test_quantities(value: str, divisor: str | None, expected: str) -> None:
    assert quantities.divide_ceil(value, divisor) == expected
