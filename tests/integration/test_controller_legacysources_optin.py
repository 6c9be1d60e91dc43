"""The old group is opt-in (`manifests/legacy/`): a controller process whose old-group CRDs
are not installed starts all the same, and serves the kind once its CRD is applied."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes_asyncio import client

from controller.legacysources import reconciler as legacy
from controller.legacysources import wiring
from kevents import kubeapi
from tests.cluster import REPO, Kube
from tests.integration import controllers as c
from tests.integration import test_controller_legacysources as base

pytestmark = pytest.mark.cluster

CRD = REPO / "manifests" / "legacy" / "300-gcppubsubsource.yaml"


@pytest.fixture
def absent(kube: Kube) -> Iterator[None]:
    kube.kubectl("delete", f"--filename={CRD}", "--ignore-not-found", "--wait=true")
    try:
        yield
    finally:
        base.uninstall(kube)


async def test_a_kind_whose_crd_is_missing_holds_nothing_up_and_starts_when_it_appears(
    kube: Kube, api_client: client.ApiClient, absent: None, namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(wiring, "SERVED_RECHECK", 0.2)
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kinds = ["GcpPubSubSource.sources.eventing.knative.dev", "ApiServerSource"]
    async with c.running(api_client, ns, kinds):  # started: wait_started returned
        kube.kubectl("apply", f"--filename={CRD}")
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                     "crd/gcppubsubsources.sources.eventing.knative.dev")  # fmt: skip
        kube.apply(base.old("GcpPubSubSource", "late", {"topic": "t", "sink": base.OLD_SINK}), ns)
        source = await c.eventually(
            lambda: api.get(legacy.legacy("gcppubsubsources"), ns, "late"),
            lambda s: c.condition(s, "Ready").get("status") == "False",
        )
    assert c.condition(source, "Ready")["reason"] == "GoogleCloudUnavailable"
