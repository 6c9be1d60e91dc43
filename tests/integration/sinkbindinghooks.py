"""Helpers for the SinkBinding webhook tests: an in-process webhook on 127.0.0.1 and a
MutatingWebhookConfiguration (same entries and rules as `manifests/500-webhook.yaml`, but a
`url:` on the host and limited to one test namespace) that is always removed."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import yaml

from controller.sinkbinding import webhook
from kevents import kubeapi
from tests.cluster import Kube

RULES = [
    {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
     "resources": ["deployments", "statefulsets", "daemonsets"]},
    {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
     "resources": ["jobs", "cronjobs"]},
    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]},
]  # fmt: skip


def configuration(name: str, namespace: str, port: int, policy: str) -> dict[str, Any]:
    """The manifest's two entries (namespace-wide, then objects labelled include), limited to
    one namespace; the webhook rewrites the include/exclude expressions for its mode."""
    config = _configuration(name, namespace, port, policy)
    second = copy.deepcopy(config["webhooks"][0])
    second["name"] = "objects." + second["name"]
    second["objectSelector"] = {"matchExpressions": [
        {"key": "bindings.knative.dev/include", "operator": "In", "values": ["true"]},
    ]}  # fmt: skip
    config["webhooks"].append(second)
    return config


def _configuration(name: str, namespace: str, port: int, policy: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "sinkbindings.webhook.sources.knative.dev",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": f"https://127.0.0.1:{port}/sinkbindings"},
            "failurePolicy": policy,
            "sideEffects": "None",
            "timeoutSeconds": 10,
            "rules": RULES,
            "namespaceSelector": {"matchExpressions": [
                {"key": "bindings.knative.dev/include", "operator": "In", "values": ["true"]},
                {"key": "bindings.knative.dev/exclude", "operator": "NotIn", "values": ["true"]},
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]},
            ]},
            "objectSelector": {"matchExpressions": [
                {"key": "bindings.knative.dev/exclude", "operator": "NotIn", "values": ["true"]},
            ]},
        }],
    }  # fmt: skip


def unique_name() -> str:
    return f"sinkbindings-test-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    """A port nothing listens on (bound and released): a webhook that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def registered(
    kube: Kube, namespace: str, name: str, port: int, policy: str,
    body: dict[str, Any] | None = None,
) -> AsyncIterator[str]:  # fmt: skip
    """The namespace opted in and configuration `name` pointing at `port` (or `body`)."""
    kube.kubectl("label", "namespace", namespace, "bindings.knative.dev/include=true")
    kube.apply(yaml.safe_dump(body or configuration(name, namespace, port, policy)))
    try:
        yield name
    finally:
        kube.kubectl("delete", "mutatingwebhookconfiguration", name, "--wait=false", check=False)


@contextlib.asynccontextmanager
async def serving(
    api: kubeapi.KubeApi, namespace: str, configuration_name: str, *,
    valid: datetime.timedelta = datetime.timedelta(days=7),
    renew_before: datetime.timedelta = datetime.timedelta(days=2),
    port: int = 0,
    host: str = "127.0.0.1",
) -> AsyncIterator[webhook.Webhook]:  # fmt: skip
    """The webhook component on `host`, its Secret in `namespace`, checking often."""
    options = webhook.Options(
        namespace, host=host, port=port, configuration=configuration_name, validation="",
        defaulting="", conversion=(),  # never the installed configurations' caBundle
        extra_hosts=(host,), valid=valid, renew_before=renew_before,
        check_interval=0.5,
    )  # fmt: skip
    hook = webhook.Webhook(api, options)
    task = asyncio.create_task(hook.run())
    try:
        await asyncio.wait_for(hook.wait_serving(), 30)
        yield hook
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
