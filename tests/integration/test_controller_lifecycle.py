"""The generic reconciler (`controller.framework.lifecycle`) against the real apiserver, with a
tiny kind on the PingSource CRD: finalizers, deletion, observedGeneration, the guarded status write,
conflicts, and what a kind's outcome and failures do to the status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from controller.framework import (
    conditions,
    discovery,
    lifecycle,
    loop,
    metrics,
    reconciling,
    workqueue,
)
from kevents import kubeapi
from tests.cluster import REPO, Kube
from tests.integration import controllers as c

pytestmark = pytest.mark.cluster

PINGS = kubeapi.Resource("sources.knative.dev", "v1", "pingsources")
FINALIZER = "probes.kevents.test"
STALE = "stale.kevents.test"
OTHER = "other.kevents.test"
"""Someone else's finalizer: keeps a deleted object around after ours is gone."""
PROBED = "Probed"


class Probe(lifecycle.Kind):
    """A kind that records what the generic reconciler asks of it."""

    kind = "PingSource"
    resource = PINGS
    condition_set = conditions.ConditionSet((PROBED,))
    finalizer = FINALIZER
    stale_finalizers = (STALE,)

    def __init__(self) -> None:
        self.reconciled: list[kubeapi.Json] = []
        self.finalized: list[str] = []
        self.forgotten: list[str] = []
        self.outcome: lifecycle.Outcome | None = None
        self.finalize_error = ""
        self.failure = ""
        self.touch = False
        """Change the object during the next reconcile (its status write then conflicts)."""
        self.api: kubeapi.KubeApi | None = None

    async def reconcile(
        self, obj: kubeapi.Json, state: lifecycle.State
    ) -> lifecycle.Outcome | None:
        self.reconciled.append(obj)
        if self.touch and self.api is not None:
            self.touch = False
            meta = obj["metadata"]
            await self.api.merge_patch(
                PINGS, meta["namespace"], meta["name"], {"metadata": {"labels": {"t": "1"}}}
            )
        state.status["sinkUri"] = "http://probe.example"
        if self.failure:
            state.mark_false(PROBED, "ProbeFailed", self.failure)
            state.retry_later(self.failure)
        else:
            state.mark_true(PROBED)
        return self.outcome

    async def finalize(self, obj: kubeapi.Json, state: lifecycle.State) -> None:
        self.finalized.append(state.key)
        if self.finalize_error:
            state.mark_false(PROBED, "FinalizeFailed", self.finalize_error)
            raise state.fail(self.finalize_error)

    async def forget(self, key: str) -> None:
        self.forgotten.append(key)


def ping_body(name: str, finalizers: list[str] | None = None) -> kubeapi.Json:
    meta: kubeapi.Json = {"name": name}
    if finalizers:
        meta["finalizers"] = finalizers
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "PingSource",
        "metadata": meta,
        "spec": {"sink": {"uri": "http://probe.example"}},
    }


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    kube.kubectl("apply", f"--filename={REPO / 'manifests' / '300-pingsource.yaml'}")
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 "crd/pingsources.sources.knative.dev")  # fmt: skip


@pytest.fixture
async def api(
    api_client: client.ApiClient, crds: None, namespace: str
) -> AsyncIterator[kubeapi.KubeApi]:
    """The client; afterwards every PingSource of the test loses its finalizers (no
    controller runs any more to remove them, and they would hold the namespace)."""
    api = kubeapi.KubeApi(api_client)
    yield api
    listed = await api.request("GET", PINGS.path(namespace))
    for item in listed.get("items") or []:
        if item["metadata"].get("finalizers"):
            await api.merge_patch(
                PINGS, namespace, item["metadata"]["name"], {"metadata": {"finalizers": None}}
            )


def generic(api: kubeapi.KubeApi, probe: Probe) -> lifecycle.GenericReconciler:
    probe.api = api
    return lifecycle.GenericReconciler(api, discovery.Discovery(api), probe)


async def test_finalizer_added_status_written_with_observed_generation(
    api: kubeapi.KubeApi, namespace: str
) -> None:
    probe = Probe()
    rec = generic(api, probe)
    await api.create(PINGS, namespace, ping_body("p", [STALE]))
    await rec.reconcile(f"{namespace}/p")

    obj = await api.get(PINGS, namespace, "p")
    assert obj["metadata"]["finalizers"] == [FINALIZER]  # ours added, the stale one gone
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["sinkUri"] == "http://probe.example"
    assert c.statuses(obj) == {PROBED: "True", "Ready": "True"}
    # The kind saw the object with our finalizer already on it.
    assert probe.reconciled[0]["metadata"]["finalizers"] == [FINALIZER]


async def test_unchanged_status_is_not_written(api: kubeapi.KubeApi, namespace: str) -> None:
    rec = generic(api, Probe())
    await api.create(PINGS, namespace, ping_body("p"))
    await rec.reconcile(f"{namespace}/p")
    before = (await api.get(PINGS, namespace, "p"))["metadata"]["resourceVersion"]

    await rec.reconcile(f"{namespace}/p")

    after = await api.get(PINGS, namespace, "p")
    assert after["metadata"]["resourceVersion"] == before


async def test_a_new_generation_is_observed(api: kubeapi.KubeApi, namespace: str) -> None:
    rec = generic(api, Probe())
    await api.create(PINGS, namespace, ping_body("p"))
    await rec.reconcile(f"{namespace}/p")
    await api.merge_patch(PINGS, namespace, "p", {"spec": {"schedule": "*/5 * * * *"}})

    await rec.reconcile(f"{namespace}/p")

    obj = await api.get(PINGS, namespace, "p")
    assert obj["metadata"]["generation"] == 2
    assert obj["status"]["observedGeneration"] == 2


async def test_deletion_finalizes_once_then_releases_the_object(
    api: kubeapi.KubeApi, namespace: str
) -> None:
    probe = Probe()
    rec = generic(api, probe)
    key = f"{namespace}/p"
    await api.create(PINGS, namespace, ping_body("p", [OTHER]))
    await rec.reconcile(key)
    await api.delete(PINGS, namespace, "p")

    await rec.reconcile(key)
    await rec.reconcile(key)  # still there (the other finalizer), already finalized

    obj = await api.get(PINGS, namespace, "p")
    assert obj["metadata"]["finalizers"] == [OTHER]
    assert probe.finalized == [key]
    assert probe.forgotten == [key, key]
    assert len(probe.reconciled) == 1  # a deleted object is never reconciled

    await api.merge_patch(PINGS, namespace, "p", {"metadata": {"finalizers": None}})
    await rec.reconcile(key)  # gone: forgotten again, nothing finalized
    assert probe.finalized == [key]
    assert probe.forgotten == [key, key, key]


async def test_failed_finalize_keeps_the_finalizer_and_says_why(
    api: kubeapi.KubeApi, namespace: str
) -> None:
    probe = Probe()
    rec = generic(api, probe)
    key = f"{namespace}/p"
    await api.create(PINGS, namespace, ping_body("p"))
    await rec.reconcile(key)
    await api.delete(PINGS, namespace, "p")
    probe.finalize_error = "the hook is still there"

    with pytest.raises(reconciling.ReconcileError, match="the hook is still there"):
        await rec.reconcile(key)

    obj = await api.get(PINGS, namespace, "p")
    assert obj["metadata"]["finalizers"] == [FINALIZER]
    assert c.condition(obj, PROBED)["reason"] == "FinalizeFailed"
    assert obj["status"]["sinkUri"] == "http://probe.example"  # the rest of the status kept
    assert probe.forgotten == []

    probe.finalize_error = ""
    await rec.reconcile(key)
    assert await api.get_or_none(PINGS, namespace, "p") is None
    assert probe.finalized == [key, key]
    assert probe.forgotten == [key]


async def test_failures_are_written_then_raised(api: kubeapi.KubeApi, namespace: str) -> None:
    probe = Probe()
    probe.failure = "the sink said no"
    rec = generic(api, probe)
    await api.create(PINGS, namespace, ping_body("p"))

    with pytest.raises(reconciling.ReconcileError, match="the sink said no"):
        await rec.reconcile(f"{namespace}/p")

    obj = await api.get(PINGS, namespace, "p")
    assert c.condition(obj, "Ready") | {"lastTransitionTime": ""} == {
        "type": "Ready", "status": "False", "reason": "ProbeFailed",
        "message": "the sink said no", "lastTransitionTime": "",
    }  # fmt: skip


@pytest.mark.parametrize(
    "outcome", list(lifecycle.Outcome), ids=[o.value for o in lifecycle.Outcome]
)
async def test_an_outcome_leaves_the_status_alone(
    api: kubeapi.KubeApi, namespace: str, outcome: lifecycle.Outcome
) -> None:
    probe = Probe()
    probe.outcome = outcome
    rec = generic(api, probe)
    await api.create(PINGS, namespace, ping_body("p"))

    await rec.reconcile(f"{namespace}/p")

    obj = await api.get(PINGS, namespace, "p")
    assert "status" not in obj or not obj["status"].get("conditions")
    assert len(probe.reconciled) == 1


async def test_a_stale_status_write_conflicts(api: kubeapi.KubeApi, namespace: str) -> None:
    probe = Probe()
    probe.touch = True
    rec = generic(api, probe)
    await api.create(PINGS, namespace, ping_body("p"))

    with pytest.raises(kubeapi.Conflict):
        await rec.reconcile(f"{namespace}/p")

    obj = await api.get(PINGS, namespace, "p")
    assert not (obj.get("status") or {}).get("conditions")


@pytest.fixture
async def queued(api: kubeapi.KubeApi) -> AsyncIterator[tuple[Probe, workqueue.WorkQueue]]:
    """A running controller of `Probe` without watches: only keys added by the test and
    its own requeues reach it."""
    probe, queue = Probe(), workqueue.WorkQueue()
    ctl = loop.Controller(
        generic(api, probe), queue, [], api, metrics.ControllerMetrics(CollectorRegistry()),
        workers=1,
    )  # fmt: skip
    task = asyncio.create_task(ctl.run())
    try:
        await asyncio.wait_for(ctl.wait_started(), 30)
        yield probe, queue
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_conflict_is_requeued_and_written_from_a_fresh_read(
    api: kubeapi.KubeApi, namespace: str, queued: tuple[Probe, workqueue.WorkQueue]
) -> None:
    probe, queue = queued
    probe.touch = True
    await api.create(PINGS, namespace, ping_body("p"))

    queue.add(f"{namespace}/p")
    obj = await c.eventually(
        lambda: api.get(PINGS, namespace, "p"),
        lambda o: c.condition(o, "Ready").get("status") == "True",
    )

    assert obj["metadata"]["labels"] == {"t": "1"}  # written after the change, not over it
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert [o["metadata"].get("labels") for o in probe.reconciled] == [None, {"t": "1"}]
