"""The SinkBinding admission webhook over TLS, called by the real apiserver: binding at
creation, certificates made, published and rotated, and both failure policies while the
webhook is down (Fail: a clear admission error; Ignore: admitted, then bound by the
reconciler)."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import ssl
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubernetes_asyncio import client

from controller import availability
from controller.sinkbinding import binder, reconciler, webhook
from kevents import kubeapi
from tests.cluster import Kube
from tests.integration import controllers as c
from tests.integration import sinkbindinghooks as hooks
from tests.integration import test_controller_sinkbinding as base

pytestmark = pytest.mark.cluster

DEPLOYMENTS = availability.DEPLOYMENTS
BINDINGS = reconciler.SINKBINDINGS
PEM = serialization.Encoding.PEM
crds = base.crds
binding, env_of, workload = base.binding, base.env_of, base.workload
PODS = kubeapi.Resource("", "v1", "pods")
SELECTED = {"selector": {"matchLabels": {"role": "heartbeat"}}}


def body_of(manifest: str) -> dict[str, Any]:
    return dict(yaml.safe_load(manifest))


async def ca_bundle(api: kubeapi.KubeApi, name: str) -> list[x509.Certificate]:
    config = await api.get(webhook.CONFIGURATIONS, None, name)
    raw = base64.b64decode(config["webhooks"][0]["clientConfig"].get("caBundle") or "")
    return x509.load_pem_x509_certificates(raw) if raw else []


async def served_certificate(port: int, cadata: str) -> x509.Certificate:
    context = ssl.create_default_context(cadata=cadata)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    del reader
    return x509.load_der_x509_certificate(der)


async def test_new_deployment_is_bound_at_admission_and_bystanders_untouched(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    kube.apply(binding(SELECTED), ns)
    name = hooks.unique_name()
    async with (
        c.running(api_client, ns, ["SinkBinding"]),
        hooks.serving(api, ns, name) as hook,
        hooks.registered(kube, ns, name, hook.port, "Fail"),
    ):
        await c.eventually(
            lambda: api.get(BINDINGS, ns, "bind"),
            lambda b: c.condition(b, "Ready").get("status") == "True",
        )
        cas = await c.eventually(lambda: ca_bundle(api, name), lambda cas: len(cas) == 1)
        secret = await api.get(webhook.SECRETS, ns, webhook.SECRET)
        assert sorted(secret["data"]) == ["ca-cert.pem", "server-cert.pem", "server-key.pem"]

        # The create response already carries the env: the webhook bound it, not a patch.
        created = await api.create(DEPLOYMENTS, ns, body_of(workload("hb", {"role": "heartbeat"})))
        url = c.service_url("event-display", ns)
        assert env_of(created) == {"KEEP": "me", "K_SINK": url, "K_CE_OVERRIDES": ""}
        assert created["metadata"]["generation"] == 1
        assert created["metadata"]["annotations"] == {binder.ANNOTATION: "bind"}

        # Outside the subject, or opted out: admitted unchanged.
        other = await api.create(DEPLOYMENTS, ns, body_of(workload("web", {"role": "web"})))
        assert env_of(other) == {"KEEP": "me", "K_SINK": "http://stale.example"}
        out = await api.create(DEPLOYMENTS, ns, body_of(
            workload("opted-out", {"role": "heartbeat", "bindings.knative.dev/exclude": "true"})
        ))  # fmt: skip
        assert env_of(out)["K_SINK"] == "http://stale.example"
        pod = await api.create(PODS, ns, {
            "metadata": {"name": "loner", "labels": {"role": "heartbeat"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                     "restartPolicy": "Never"},
        })  # fmt: skip
        assert "env" not in pod["spec"]["containers"][0]  # a Pod is not a Deployment subject
        server = await served_certificate(hook.port, cas[0].public_bytes(PEM).decode())
        assert server.issuer == cas[0].subject
    for name_ in ("web", "opted-out"):
        dep = await api.get(DEPLOYMENTS, ns, name_)
        assert env_of(dep)["K_SINK"] == "http://stale.example"


async def test_certificate_rotates_before_expiry_without_breaking_admission(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    name = hooks.unique_name()
    kube.apply(c.SINK_SERVICE, ns)
    kube.apply(binding(SELECTED), ns)
    valid, renew = datetime.timedelta(seconds=40), datetime.timedelta(seconds=36)
    async with (
        c.running(api_client, ns, ["SinkBinding"]),
        hooks.serving(api, ns, name, valid=valid, renew_before=renew) as hook,
        hooks.registered(kube, ns, name, hook.port, "Fail"),
    ):
        first = (await c.eventually(lambda: ca_bundle(api, name), lambda cas: len(cas) == 1))[0]
        pem = first.public_bytes(PEM).decode()
        before = await served_certificate(hook.port, pem)
        cas = await c.eventually(lambda: ca_bundle(api, name), lambda cas: len(cas) == 2)
        assert cas[1] == first  # the previous CA stays trusted while replicas catch up
        after = await served_certificate(hook.port, cas[0].public_bytes(PEM).decode())
        assert after.serial_number != before.serial_number
        assert after.issuer == cas[0].subject
        await c.eventually(
            lambda: api.get(BINDINGS, ns, "bind"),
            lambda b: c.condition(b, "Ready").get("status") == "True",
        )
        created = await api.create(DEPLOYMENTS, ns, body_of(workload("hb", {"role": "heartbeat"})))
        assert env_of(created)["K_SINK"] == c.service_url("event-display", ns)


async def test_fail_policy_rejects_subjects_clearly_while_the_webhook_is_down(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    async with hooks.registered(kube, ns, hooks.unique_name(), hooks.free_port(), "Fail"):
        with pytest.raises(kubeapi.ApiError) as failure:
            await api.create(DEPLOYMENTS, ns, body_of(workload("hb", {"role": "heartbeat"})))
        # Objects that opted out are never sent to the webhook, so nothing blocks them.
        await api.create(DEPLOYMENTS, ns, body_of(
            workload("free", {"bindings.knative.dev/exclude": "true"})
        ))  # fmt: skip
    message = failure.value.message
    assert failure.value.status == 500
    assert 'failed calling webhook "sinkbindings.webhook.sources.knative.dev"' in message
    assert "connection refused" in message


async def test_ignore_policy_admits_while_down_and_the_reconciler_binds(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    kube.apply(binding(SELECTED), ns)
    async with hooks.registered(kube, ns, hooks.unique_name(), hooks.free_port(), "Ignore"):
        created = await api.create(DEPLOYMENTS, ns, body_of(workload("hb", {"role": "heartbeat"})))
        assert env_of(created)["K_SINK"] == "http://stale.example"  # admitted, not bound
        async with c.running(api_client, ns, ["SinkBinding"]):
            await c.eventually(
                lambda: api.get(DEPLOYMENTS, ns, "hb"),
                lambda d: env_of(d).get("K_SINK") == c.service_url("event-display", ns),
            )


async def bridge_address(api: kubeapi.KubeApi) -> str:
    """The node's pod-network bridge address (first address of its pod CIDR): where a host
    process is reachable from the pod network, and so through a Service."""
    nodes = await api.request("GET", "/api/v1/nodes")
    cidr = ipaddress.ip_network(nodes["items"][0]["spec"]["podCIDR"])
    return str(cidr.network_address + 1)


async def test_service_client_config_reaches_the_webhook_through_its_service(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    """As the manifest ships it: `clientConfig.service` -> Service -> the webhook's port, with
    the certificate naming `<service>.<namespace>.svc`. The in-process webhook listens on the
    bridge address and a selector-less Service's EndpointSlice points there."""
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    kube.apply(binding(SELECTED), ns)
    host, name = await bridge_address(api), hooks.unique_name()
    config = hooks.configuration(name, ns, 0, "Fail")
    async with (
        c.running(api_client, ns, ["SinkBinding"]),
        hooks.serving(api, ns, name, host=host) as hook,
    ):
        kube.apply(f"""
apiVersion: v1
kind: Service
metadata: {{name: {webhook.SERVICE}}}
spec:
  ports: [{{name: https-webhook, port: 443, targetPort: {hook.port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {webhook.SERVICE}-host
  labels: {{kubernetes.io/service-name: {webhook.SERVICE}}}
addressType: IPv4
ports: [{{name: https-webhook, port: {hook.port}, protocol: TCP}}]
endpoints: [{{addresses: ["{host}"], conditions: {{ready: true}}}}]
""", ns)  # fmt: skip
        for entry in config["webhooks"]:
            entry["clientConfig"] = {
                "service": {"name": webhook.SERVICE, "namespace": ns, "path": "/sinkbindings"}
            }
        async with hooks.registered(kube, ns, name, 0, "Fail", body=config):
            await c.eventually(lambda: ca_bundle(api, name), lambda cas: len(cas) == 1)
            await c.eventually(
                lambda: api.get(BINDINGS, ns, "bind"),
                lambda b: c.condition(b, "Ready").get("status") == "True",
            )
            created = await c.eventually(
                lambda: create_once(api, ns), lambda d: d is not None, within=30
            )
    assert env_of(created)["K_SINK"] == c.service_url("event-display", ns)


async def create_once(api: kubeapi.KubeApi, ns: str) -> dict[str, Any] | None:
    """Create the subject; None while the apiserver cannot reach the webhook yet (Fail)."""
    try:
        return await api.create(DEPLOYMENTS, ns, body_of(workload("hb", {"role": "heartbeat"})))
    except kubeapi.ApiError as exc:
        if "failed calling webhook" in exc.message:
            return None
        raise
