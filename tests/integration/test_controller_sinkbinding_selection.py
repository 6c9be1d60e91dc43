"""SINK_BINDING_SELECTION_MODE against the real apiserver: the shipped SinkBinding webhook
configuration (`manifests/500-webhook.yaml`, pointed at the in-process webhook on 127.0.0.1
and narrowed to the test namespace) binds a Job in an unlabelled namespace in `exclusion`
mode (Knative's default, the docs' CronJob sample); in `inclusion` mode that Job is admitted
unbound and its SinkBinding says so (Ready False naming it) until it is gone, and a labelled
namespace is bound again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from controller.sinkbinding import binder, reconciler, selection, webhook
from kevents import kubeapi
from tests.cluster import REPO, Kube
from tests.integration import controllers as c
from tests.integration import sinkbindinghooks as hooks
from tests.integration import test_controller_sinkbinding as base

pytestmark = pytest.mark.cluster

crds = base.crds
BINDINGS = reconciler.SINKBINDINGS
JOBS = kubeapi.Resource("batch", "v1", "jobs")
SELECTED = {"apiVersion": "batch/v1", "kind": "Job",
            "selector": {"matchLabels": {"app": "heartbeat-cron"}}}  # fmt: skip


def shipped(name: str, namespace: str, port: int) -> dict[str, Any]:
    """The manifest's SinkBinding configuration, on the host and one namespace, failing
    closed (a webhook that did not answer would show as a refused create, not a guess)."""
    docs = yaml.safe_load_all((REPO / "manifests" / "500-webhook.yaml").read_text())
    config = next(
        d for d in docs
        if d["kind"] == "MutatingWebhookConfiguration"
        and d["metadata"]["name"] == webhook.CONFIGURATION
    )  # fmt: skip
    config["metadata"] = {"name": name}
    for hook in config["webhooks"]:
        hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}/sinkbindings"}
        hook["failurePolicy"] = "Fail"
        hook["namespaceSelector"]["matchExpressions"].append(
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}
        )
    return dict(config)


@contextlib.asynccontextmanager
async def webhook_in(
    kube: Kube, api: kubeapi.KubeApi, namespace: str, mode: selection.Mode
) -> AsyncIterator[None]:
    name = hooks.unique_name()
    options = webhook.Options(
        namespace, host="127.0.0.1", port=0, configuration=name, validation="",
        defaulting="", extra_hosts=("127.0.0.1",), check_interval=0.5, selection_mode=mode,
    )  # fmt: skip
    hook = webhook.Webhook(api, options)
    task = asyncio.create_task(hook.run())
    try:
        await asyncio.wait_for(hook.wait_serving(), 30)
        kube.apply(yaml.safe_dump(shipped(name, namespace, hook.port)))
        wanted = selection.selectors(mode)[0][0]
        await c.eventually(
            lambda: api.get(webhook.CONFIGURATIONS, None, name),
            lambda m: bool(m["webhooks"][0]["clientConfig"].get("caBundle"))
            and all(e in m["webhooks"][0]["namespaceSelector"]["matchExpressions"]
                    for e in wanted),
        )  # fmt: skip
        yield
    finally:
        kube.kubectl("delete", "mutatingwebhookconfiguration", name, "--wait=false", check=False)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def job(name: str) -> dict[str, Any]:
    """A Job of the docs' CronJob (its jobTemplate's labels), suspended: no pods needed."""
    return {
        "metadata": {"name": name, "labels": {"app": "heartbeat-cron"}},
        "spec": {"suspend": True, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "single-heartbeat", "image": "kevents/heartbeat:test",
                            "env": [{"name": "ONE_SHOT", "value": "true"}]}],
        }}},
    }  # fmt: skip


def k_sink(obj: dict[str, Any]) -> str | None:
    env = obj["spec"]["template"]["spec"]["containers"][0].get("env") or []
    return next((e.get("value") for e in env if e["name"] == "K_SINK"), None)


def available(b: dict[str, Any]) -> dict[str, Any]:
    return c.condition(b, "SinkBindingAvailable")


async def test_exclusion_mode_binds_jobs_in_an_unlabelled_namespace(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    kube.apply(base.binding(SELECTED), ns)
    async with (
        c.running(api_client, ns, ["SinkBinding"]),
        webhook_in(kube, api, ns, selection.Mode.EXCLUSION),
    ):
        await c.eventually(lambda: api.get(BINDINGS, ns, "bind"),
                           lambda b: c.condition(b, "Ready").get("status") == "True")  # fmt: skip
        created = await api.create(JOBS, ns, job("heartbeat-cron-1"))
        assert k_sink(created) == c.service_url("event-display", ns)
        assert created["metadata"]["annotations"][binder.ANNOTATION] == "bind"
        opted_out = job("opted-out")
        opted_out["metadata"]["labels"]["bindings.knative.dev/exclude"] = "true"
        assert k_sink(await api.create(JOBS, ns, opted_out)) is None
        bound = await c.eventually(
            lambda: api.get(BINDINGS, ns, "bind"),
            lambda b: available(b).get("reason") == "BoundAtAdmission"
            and c.condition(b, "Ready").get("status") == "True",
        )  # fmt: skip
        assert bound["status"]["sinkUri"] == c.service_url("event-display", ns)


async def test_inclusion_mode_reports_jobs_admitted_unbound_until_they_are_gone(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    kube.apply(base.binding(SELECTED), ns)
    async with (
        c.running(api_client, ns, ["SinkBinding"]),
        webhook_in(kube, api, ns, selection.Mode.INCLUSION),
    ):
        await c.eventually(lambda: api.get(BINDINGS, ns, "bind"),
                           lambda b: c.condition(b, "Ready").get("status") == "True")  # fmt: skip
        created = await api.create(JOBS, ns, job("heartbeat-cron-1"))
        assert k_sink(created) is None  # the namespace is not included
        reported = await c.eventually(
            lambda: api.get(BINDINGS, ns, "bind"),
            lambda b: c.condition(b, "Ready").get("status") == "False",
        )
        assert available(reported)["reason"] == "SubjectsNotBound"
        assert '"heartbeat-cron-1"' in available(reported)["message"]
        assert "bindings.knative.dev/include" in available(reported)["message"]

        await api.request("DELETE", JOBS.path(ns, "heartbeat-cron-1"),
                          query=[("propagationPolicy", "Background")])  # fmt: skip
        await c.eventually(lambda: api.get(BINDINGS, ns, "bind"),
                           lambda b: c.condition(b, "Ready").get("status") == "True")  # fmt: skip
        kube.kubectl("label", "namespace", ns, "bindings.knative.dev/include=true")
        # The apiserver matches namespaceSelector against its namespace cache, which sees the
        # label a moment later: Jobs created in between are (correctly) still unbound.
        attempts = iter(range(1, 1000))

        async def create() -> dict[str, Any]:
            result: dict[str, Any] = await api.create(JOBS, ns, job(f"bound-{next(attempts)}"))
            return result

        created = await c.eventually(create, lambda j: k_sink(j) is not None)
        assert k_sink(created) == c.service_url("event-display", ns)


async def test_a_namespace_labelled_exclude_gets_nothing_bound_and_says_so(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    """Knative's opt-out, in either mode, also for the subjects the reconciler patches."""
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    kube.apply(base.workload("hb", {"role": "heartbeat"}), ns)
    kube.apply(base.binding({"selector": {"matchLabels": {"role": "heartbeat"}}}), ns)
    url = c.service_url("event-display", ns)
    async with c.running(api_client, ns, ["SinkBinding"]):
        await c.eventually(lambda: api.get(base.DEPLOYMENTS, ns, "hb"),
                           lambda d: base.env_of(d).get("K_SINK") == url)  # fmt: skip
        kube.kubectl("label", "namespace", ns, "bindings.knative.dev/exclude=true")
        kube.kubectl("annotate", "sinkbinding", "bind", "-n", ns, "touched=1")  # reconcile now
        excluded = await c.eventually(
            lambda: api.get(BINDINGS, ns, "bind"),
            lambda b: available(b).get("reason") == "NamespaceExcluded",
        )
        assert c.condition(excluded, "Ready")["status"] == "False"
        released = await api.get(base.DEPLOYMENTS, ns, "hb")
        assert base.env_of(released) == {"KEEP": "me"}
        assert binder.ANNOTATION not in (released["metadata"].get("annotations") or {})
