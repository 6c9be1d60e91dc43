"""The CRD tutorial (`guitars.kool.karmalabs.local`): an old-group ApiServerSource on a
user's own kind, whose ServiceAccount holds a Role granting get/list/watch on `guitars` and
nothing else. The controllers (in-process) find the permissions sufficient and write the
adapter's config; the adapter, authenticated with that ServiceAccount's own token, delivers
the add, update and delete of a Guitar to the sink."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client, config

from controller import availability
from controller.legacysources import reconciler as legacy
from kevents import kubeapi
from tests.cluster import Kube
from tests.integration import controllers as c
from tests.integration import test_apiserver_source as adapter_tests
from tests.integration import test_controller_legacysources as base

pytestmark = pytest.mark.cluster

crds = base.crds
GUITARS = kubeapi.Resource("kool.karmalabs.local", "v1", "guitars")
GUITAR_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: guitars.kool.karmalabs.local}
spec:
  group: kool.karmalabs.local
  scope: Namespaced
  names: {plural: guitars, singular: guitar, kind: Guitar, shortNames: [guitar]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              brand: {type: string}
              review: {type: boolean}
"""
ONLY_GUITARS = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: events-sa}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: guitar-watcher}
rules:
- apiGroups: [kool.karmalabs.local]
  resources: [guitars]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: guitar-watcher}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: guitar-watcher}
subjects: [{kind: ServiceAccount, name: events-sa, namespace: NAMESPACE}]
"""


@pytest.fixture(scope="module")
def guitar_crd(kube: Kube) -> None:
    kube.apply(GUITAR_CRD, "default")
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 "crd/guitars.kool.karmalabs.local")  # fmt: skip


@contextlib.asynccontextmanager
async def service_account_client(
    kube: Kube, admin: client.ApiClient, namespace: str
) -> AsyncIterator[client.ApiClient]:
    """An API client holding only `events-sa`'s token (no admin certificate)."""
    token = kube.kubectl("create", "token", "events-sa", f"-n={namespace}").stdout.strip()
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(kube.kubeconfig), client_configuration=cfg)
    sa = copy.copy(cfg)
    sa.cert_file = sa.key_file = None
    sa.api_key = {"BearerToken": token}
    sa.api_key_prefix = {"BearerToken": "Bearer"}
    async with client.ApiClient(configuration=sa) as api:
        yield api


def guitar(name: str, brand: str) -> dict[str, Any]:
    return {"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar",
            "metadata": {"name": name}, "spec": {"brand": brand, "review": False}}  # fmt: skip


async def test_guitar_add_update_delete_reach_the_sink_with_a_role_on_guitars_only(
    kube: Kube, api_client: client.ApiClient, crds: None, guitar_crd: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(ONLY_GUITARS.replace("NAMESPACE", ns) + "---\n" + c.SINK_SERVICE, ns)
    kube.apply(base.old("ApiServerSource", "testevents", {
        "serviceAccountName": "events-sa", "mode": "Resource",
        "resources": [{"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar"}],
        "sink": base.OLD_SINK,
    }), ns)  # fmt: skip
    kinds = ["ApiServerSource", "ApiServerSource.sources.eventing.knative.dev"]
    async with c.running(api_client, ns, kinds):
        source = await c.eventually(
            lambda: api.get(legacy.legacy("apiserversources"), ns, "testevents"),
            lambda s: c.condition(s, "SufficientPermissions").get("status") == "True",
        )
        assert c.condition(source, "SinkProvided")["status"] == "True"
        deployments = await api.request("GET", availability.DEPLOYMENTS.path(ns))
    (dep,) = deployments["items"]
    (ctr,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in ctr["env"]}
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "events-sa"
    source_config = json.loads(env["K_SOURCE_CONFIG"])
    assert source_config["resources"][0]["gvr"] == {
        "Group": "kool.karmalabs.local", "Version": "v1", "Resource": "guitars",
    }  # fmt: skip

    sink = adapter_tests.Sink()
    async with (
        service_account_client(kube, api_client, ns) as sa_api,
        adapter_tests.serve_sink(sink),
        adapter_tests.running_adapter(sa_api, sink.url, source_config, ns),
    ):
        await api.create(GUITARS, ns, guitar("fender", "fender"))
        await api.merge_patch(GUITARS, ns, "fender", {"spec": {"review": True}})
        await api.delete(GUITARS, ns, "fender")
        await sink.wait_for(lambda: len(sink.of("fender")) == 3)
    seen = sink.of("fender")
    assert [t for t, _ in seen] == [
        "dev.knative.apiserver.resource.add",
        "dev.knative.apiserver.resource.update",
        "dev.knative.apiserver.resource.delete",
    ]
    assert [d["spec"]["review"] for _, d in seen] == [False, True, True]
    assert all(d["kind"] == "Guitar" for _, d in seen)
