"""The SinkBinding reconciler against the real apiserver, in-process, without the webhook:
subjects selected by label or name are patched (Undo then Do), re-patched when the sink
changes, unbound when the binding goes; bystanders are never touched."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from controller import availability
from controller.sinkbinding import binder, reconciler
from kevents import kubeapi
from tests.cluster import Kube
from tests.integration import controllers as c

pytestmark = pytest.mark.cluster

BINDINGS = reconciler.SINKBINDINGS
DEPLOYMENTS = availability.DEPLOYMENTS
CRONJOBS = kubeapi.Resource("batch", "v1", "cronjobs")


def workload(name: str, labels: dict[str, str], *, init: bool = False) -> str:
    """A Deployment with no replicas (only its template matters here)."""
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "kevents/heartbeat:test",
                        "env": [{"name": "KEEP", "value": "me"},
                                {"name": "K_SINK", "value": "http://stale.example"}]}],
    }  # fmt: skip
    if init:
        spec["initContainers"] = [{"name": "setup", "image": "busybox"}]
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    }  # fmt: skip
    return yaml.safe_dump(body)


def binding(subject: dict[str, Any], sink: str = "event-display", **spec: Any) -> str:
    body = {
        "apiVersion": "sources.knative.dev/v1", "kind": "SinkBinding",
        "metadata": {"name": "bind"},
        "spec": {"subject": {"apiVersion": "apps/v1", "kind": "Deployment", **subject},
                 "sink": {"ref": {"apiVersion": "v1", "kind": "Service", "name": sink}},
                 **spec},
    }  # fmt: skip
    return yaml.safe_dump(body)


def env_of(obj: dict[str, Any], key: str = "containers") -> dict[str, str]:
    containers = obj["spec"]["template"]["spec"].get(key) or []
    return {e["name"]: e.get("value", "") for e in containers[0].get("env") or []}


def names_of(obj: dict[str, Any]) -> list[str]:
    containers = obj["spec"]["template"]["spec"]["containers"]
    return [e["name"] for e in containers[0].get("env") or []]


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    kube.install_crds("sinkbindings.sources.knative.dev")


def second_sink() -> str:
    return c.SINK_SERVICE.replace("name: event-display", "name: other-display")


async def test_label_selected_deployments_are_bound_rebound_and_unbound(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns = namespace
    api = kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE + "---\n" + second_sink(), ns)
    kube.apply(workload("hb", {"role": "heartbeat"}, init=True), ns)
    kube.apply(workload("bystander", {"role": "web"}), ns)
    before = await api.get(DEPLOYMENTS, ns, "bystander")
    kube.apply(binding({"selector": {"matchLabels": {"role": "heartbeat"}}},
                       ceOverrides={"extensions": {"foo": "bar"}}), ns)  # fmt: skip
    async with c.running(api_client, ns, ["SinkBinding"]):
        bound = await c.eventually(
            lambda: api.get(BINDINGS, ns, "bind"),
            lambda b: c.condition(b, "Ready").get("status") == "True",
        )
        dep = await api.get(DEPLOYMENTS, ns, "hb")
        url = c.service_url("event-display", ns)
        assert bound["status"]["sinkUri"] == url
        assert not bound["metadata"].get("finalizers")  # unbinding needs no finalizer
        assert c.statuses(bound) == {
            "OIDCIdentityCreated": "True", "OIDCTokenSecretCreated": "True", "Ready": "True",
            "SinkBindingAvailable": "True", "SinkProvided": "True", "TrustBundlePropagated": "True",
        }  # fmt: skip
        assert c.condition(bound, "OIDCIdentityCreated")["reason"] == (
            "authentication-oidc feature disabled"
        )
        expected = {"KEEP": "me", "K_SINK": url, "K_CE_OVERRIDES": '{"extensions":{"foo":"bar"}}'}
        assert env_of(dep) == expected
        assert names_of(dep) == ["KEEP", "K_SINK", "K_CE_OVERRIDES"]  # stale K_SINK removed
        assert dep["metadata"]["annotations"][binder.ANNOTATION] == "bind"
        assert env_of(dep, "initContainers") == {k: v for k, v in expected.items() if k != "KEEP"}

        # The sink changes: status first, then the pod template (a rollout).
        kube.apply(binding({"selector": {"matchLabels": {"role": "heartbeat"}}},
                           sink="other-display"), ns)  # fmt: skip
        new_url = c.service_url("other-display", ns)
        dep2 = await c.eventually(
            lambda: api.get(DEPLOYMENTS, ns, "hb"),
            lambda d: env_of(d).get("K_SINK") == new_url,
        )
        assert dep2["metadata"]["generation"] > dep["metadata"]["generation"]
        assert env_of(dep2)["K_CE_OVERRIDES"] == ""  # no overrides: present and empty

        # A Deployment labelled later is bound too.
        kube.apply(workload("late", {"role": "heartbeat"}), ns)
        await c.eventually(
            lambda: api.get(DEPLOYMENTS, ns, "late"),
            lambda d: env_of(d).get("K_SINK") == new_url,
        )

        # Deleting the binding releases its objects: env and owner annotation removed.
        await api.request("DELETE", BINDINGS.path(ns, "bind"))
        await c.eventually(lambda: api.get_or_none(BINDINGS, ns, "bind"), lambda b: b is None)
        for name in ("hb", "late"):
            dep3 = await c.eventually(
                lambda n=name: api.get(DEPLOYMENTS, ns, n),  # type: ignore[misc]
                lambda d: env_of(d) == {"KEEP": "me"},
            )
            assert binder.ANNOTATION not in (dep3["metadata"].get("annotations") or {})
    after = await api.get(DEPLOYMENTS, ns, "bystander")
    assert after["metadata"]["generation"] == before["metadata"]["generation"] == 1
    assert after["spec"] == before["spec"]
    assert env_of(after)["K_SINK"] == "http://stale.example"


async def test_named_subject_missing_until_created_and_ca_certs_injected(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns = namespace
    api = kubeapi.KubeApi(api_client)
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    body = yaml.safe_load(binding({"name": "later"}))
    body["spec"]["sink"] = {"uri": "https://sink.example.com/path", "CACerts": pem}
    kube.apply(yaml.safe_dump(body), ns)
    async with c.running(api_client, ns, ["SinkBinding"]):
        missing = await c.eventually(
            lambda: api.get(BINDINGS, ns, "bind"),
            lambda b: c.condition(b, "SinkBindingAvailable").get("status") == "False",
        )
        cond = c.condition(missing, "SinkBindingAvailable")
        assert cond["reason"] == "SubjectMissing"
        assert cond["message"] == f'Deployment "later" in namespace {ns} not found'
        assert c.condition(missing, "Ready")["status"] == "False"
        kube.apply(workload("later", {}), ns)
        await c.eventually(
            lambda: api.get(BINDINGS, ns, "bind"),
            lambda b: c.condition(b, "Ready").get("status") == "True",
        )
        dep = await api.get(DEPLOYMENTS, ns, "later")
        assert env_of(dep)["K_SINK"] == "https://sink.example.com/path"
        assert env_of(dep)["K_CA_CERTS"] == pem
        assert names_of(dep) == ["KEEP", "K_SINK", "K_CA_CERTS", "K_CE_OVERRIDES"]


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ({"apiVersion": "v1", "kind": "Service", "name": "x"},
         'subject kind "Service" in "v1" cannot be bound: a SinkBinding subject must be one of '
         "CronJob, DaemonSet, Deployment, Job, Pod, StatefulSet (apps/v1, batch/v1 or v1)"),
        ({"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "namespace": "elsewhere"},
         'subject namespace "elsewhere" differs from the SinkBinding\'s namespace "{ns}"; '
         "a binding only reaches its own namespace"),
    ],
    ids=["not-podspecable", "other-namespace"],
)  # fmt: skip
async def test_invalid_subject_is_a_readable_condition(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str,
    subject: dict[str, str], message: str,
) -> None:  # fmt: skip
    ns = namespace
    api = kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    body = yaml.safe_load(binding({}))
    body["spec"]["subject"] = subject
    kube.apply(yaml.safe_dump(body), ns)
    async with c.running(api_client, ns, ["SinkBinding"]):
        bad = await c.eventually(
            lambda: api.get(BINDINGS, ns, "bind"),
            lambda b: c.condition(b, "SinkBindingAvailable").get("status") == "False",
        )
    cond = c.condition(bad, "SinkBindingAvailable")
    assert (cond["reason"], cond["message"]) == ("SubjectInvalid", message.format(ns=ns))
    assert c.condition(bad, "Ready")["status"] == "False"


async def test_cronjob_job_template_is_bound(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns = namespace
    api = kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    kube.apply("""
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: job, image: busybox}]
""", ns)  # fmt: skip
    body = yaml.safe_load(binding({"name": "nightly"}))
    body["spec"]["subject"]["apiVersion"] = "batch/v1"
    body["spec"]["subject"]["kind"] = "CronJob"
    kube.apply(yaml.safe_dump(body), ns)
    async with c.running(api_client, ns, ["SinkBinding"]):
        job = await c.eventually(
            lambda: api.get(CRONJOBS, ns, "nightly"),
            lambda j: bool(j["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
                           .get("env")),
        )  # fmt: skip
        await api.request("DELETE", BINDINGS.path(ns, "bind"))
        released = await c.eventually(
            lambda: api.get(CRONJOBS, ns, "nightly"),
            lambda j: "env" not in j["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            ["containers"][0],
        )  # fmt: skip
    env = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "K_SINK", "value": c.service_url("event-display", ns)},
        {"name": "K_CE_OVERRIDES"},  # empty: present, value omitted as the apiserver does
    ]
    assert binder.ANNOTATION not in (released["metadata"].get("annotations") or {})


async def test_a_binding_deleted_while_the_controller_is_down_is_released_on_restart(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    kube.apply(workload("hb", {"role": "heartbeat"}), ns)
    kube.apply(binding({"selector": {"matchLabels": {"role": "heartbeat"}}}), ns)
    async with c.running(api_client, ns, ["SinkBinding"]):
        await c.eventually(
            lambda: api.get(DEPLOYMENTS, ns, "hb"),
            lambda d: "K_SINK" in env_of(d) and env_of(d)["K_SINK"] != "http://stale.example",
        )
    # No finalizer: the delete completes at once, with nobody running.
    await api.request("DELETE", BINDINGS.path(ns, "bind"))
    assert await api.get_or_none(BINDINGS, ns, "bind") is None
    async with c.running(api_client, ns, ["SinkBinding"]):
        dep = await c.eventually(
            lambda: api.get(DEPLOYMENTS, ns, "hb"), lambda d: env_of(d) == {"KEEP": "me"}
        )
    assert binder.ANNOTATION not in (dep["metadata"].get("annotations") or {})


async def test_the_first_binding_keeps_a_shared_subject_until_it_goes(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE + "---\n" + second_sink(), ns)
    kube.apply(workload("hb", {"role": "heartbeat"}), ns)
    first = yaml.safe_load(binding({"name": "hb"}))
    kube.apply(yaml.safe_dump(first), ns)
    second = yaml.safe_load(binding({"selector": {"matchLabels": {"role": "heartbeat"}}},
                                    sink="other-display"))  # fmt: skip
    second["metadata"]["name"] = "second"
    async with c.running(api_client, ns, ["SinkBinding"]):
        await c.eventually(lambda: api.get(BINDINGS, ns, "bind"),
                           lambda b: c.condition(b, "Ready").get("status") == "True")  # fmt: skip
        kube.apply(yaml.safe_dump(second), ns)
        later = await c.eventually(
            lambda: api.get(BINDINGS, ns, "second"),
            lambda b: (
                c.condition(b, "SinkBindingAvailable").get("reason") == "SubjectsBoundElsewhere"
            ),
        )
        assert c.condition(later, "SinkBindingAvailable")["message"] == (
            'Deployment "hb" (by SinkBinding "bind") already bound'
        )
        dep = await api.get(DEPLOYMENTS, ns, "hb")
        assert env_of(dep)["K_SINK"] == c.service_url("event-display", ns)
        generation = dep["metadata"]["generation"]
        # No tug of war: reconciling the second binding again (a new generation, observed)
        # leaves the subject as the first binding set it.
        overrides = {"spec": {"ceOverrides": {"extensions": {"probe": "1"}}}}
        await api.merge_patch(BINDINGS, ns, "second", overrides)
        await c.eventually(
            lambda: api.get(BINDINGS, ns, "second"),
            lambda b: (
                b.get("status", {}).get("observedGeneration") == b["metadata"]["generation"]
                and c.condition(b, "SinkBindingAvailable").get("reason") == "SubjectsBoundElsewhere"
            ),
        )
        assert (await api.get(DEPLOYMENTS, ns, "hb"))["metadata"]["generation"] == generation

        await api.request("DELETE", BINDINGS.path(ns, "bind"))
        taken = await c.eventually(
            lambda: api.get(DEPLOYMENTS, ns, "hb"),
            lambda d: env_of(d).get("K_SINK") == c.service_url("other-display", ns),
        )
    assert taken["metadata"]["annotations"][binder.ANNOTATION] == "second"


async def test_a_subject_changed_under_the_patch_keeps_the_binding_ready(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    """Another writer changing the Deployment between the reconciler's read and its patch is
    a 409 Conflict: retried on the new version, never shown as Ready False (it flickered
    False for ~100 ms before, which `kn source binding list` showed a user)."""
    ns = namespace
    api = kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    kube.apply(workload("busy", {"role": "busy"}), ns)
    subject = {"selector": {"matchLabels": {"role": "busy"}}}
    kube.apply(binding(subject), ns)
    seen: list[str] = []

    async def watch_ready() -> None:
        query = [("fieldSelector", "metadata.name=bind")]
        async for _, obj in api.watch(BINDINGS.path(ns), query, read_timeout=60):
            seen.append(c.condition(obj, "Ready").get("status", ""))

    async def keep_changing(stop: asyncio.Event) -> int:
        """Another writer: an annotation of the Deployment changed as fast as it goes."""
        changes = 0
        while not stop.is_set():
            body = {"metadata": {"annotations": {"example.com/tick": str(changes)}}}
            await api.merge_patch(DEPLOYMENTS, ns, "busy", body)
            changes += 1
        return changes

    async with c.running(api_client, ns, ["SinkBinding"]):
        await c.eventually(
            lambda: api.get(BINDINGS, ns, "bind"),
            lambda b: c.condition(b, "Ready").get("status") == "True",
        )
        watcher = asyncio.create_task(watch_ready())
        stop = asyncio.Event()
        writer = asyncio.create_task(keep_changing(stop))
        try:
            for round_ in range(5):  # each rebinds the Deployment while it keeps changing
                overrides = {"extensions": {"round": str(round_)}}
                kube.apply(binding(subject, ceOverrides=overrides), ns)
                wanted = f'"round":"{round_}"'

                def rebound(d: dict[str, Any], wanted: str = wanted) -> bool:
                    return wanted in env_of(d).get("K_CE_OVERRIDES", "")

                await c.eventually(lambda: api.get(DEPLOYMENTS, ns, "busy"), rebound)
        finally:
            stop.set()
            changes = await writer
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    assert changes > 5, "the other writer did not run"
    assert seen and "False" not in seen, seen
