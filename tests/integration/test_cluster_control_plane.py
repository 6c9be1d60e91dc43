"""The local control plane behaves like a real cluster: API, controllers, scheduler, RBAC."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid

import aiohttp
import pytest
from kubernetes_asyncio import client

from tests import cluster, waiting

pytestmark = pytest.mark.cluster


def test_readyz_answers_ok(kube: cluster.Kube) -> None:
    out = kube.kubectl("get", "--raw", "/readyz").stdout
    assert out.strip() == "ok"


def test_kubectl_version_shows_the_built_server(kube: cluster.Kube) -> None:
    version = json.loads(kube.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.37.2"
    assert version["serverVersion"]["minor"] == "37"


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      nodeSelector: {kevents.dev/test-node: "NODE"}
      tolerations:
        - {operator: Exists}
      containers:
        - name: web
          image: kevents/python
          command: ["python", "-m", "http.server"]
"""


async def _make_ready_node(core: client.CoreV1Api, name: str) -> None:
    await core.create_node(
        client.V1Node(
            metadata=client.V1ObjectMeta(
                name=name,
                labels={"kevents.dev/test-node": name, "kubernetes.io/hostname": name},
            )
        )
    )
    await core.patch_node_status(
        name,
        {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "TestNode",
                        "message": "node object created by the test",
                    }
                ],
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "50"},
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "50"},
            }
        },
    )


async def test_deployment_gets_replicaset_and_pods_bound_to_the_node(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    node = f"test-node-{uuid.uuid4().hex[:6]}"
    await _make_ready_node(core, node)
    try:
        kube.apply(DEPLOYMENT.replace("NODE", node), namespace=namespace)

        async def observed() -> tuple[list[tuple[str, str]], list[str | None]]:
            """The ReplicaSets' owners and the web pods' nodes."""
            rs = await apps.list_namespaced_replica_set(namespace)
            pods = await core.list_namespaced_pod(namespace, label_selector="app=web")
            owners = [(o.kind, o.name) for r in rs.items for o in r.metadata.owner_references]
            return owners, [p.spec.node_name for p in pods.items]

        owners, nodes = await waiting.fetched(
            observed, lambda got: bool(got[0]) and len(got[1]) == 2 and all(got[1]), 60,
            "a ReplicaSet (deployment controller), two pods (replicaset controller), bound "
            "(scheduler)", step=0.5,
        )  # fmt: skip
        assert owners == [("Deployment", "web")]
        assert set(nodes) == {node}, "the scheduler bound the pods elsewhere"
    finally:
        await core.delete_node(node)


async def _status_with_token(server: str, ca: ssl.SSLContext, token: str, path: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server}{path}", headers={"Authorization": f"Bearer {token}"}, ssl=ca) as resp,
    ):
        return resp.status


async def test_rbac_denies_until_a_role_is_bound(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    await core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    user = f"system:serviceaccount:{namespace}:reader"
    can_i = kube.kubectl(
        "auth", "can-i", "list", "pods", f"--as={user}", "-n", namespace, check=False
    )
    assert can_i.stdout.strip() == "no"
    assert can_i.returncode == 1

    token_request = await core.create_namespaced_service_account_token(
        "reader",
        namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    )
    token = token_request.status.token
    server = api_client.configuration.host
    assert token and server
    ca = ssl.create_default_context(cafile=api_client.configuration.ssl_ca_cert)
    path = f"/api/v1/namespaces/{namespace}/pods"
    assert await _status_with_token(server, ca, token, path) == 403

    await rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list"])],
        ),
    )
    await rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
            ],
        ),
    )
    status = 0
    for _ in range(40):
        status = await _status_with_token(server, ca, token, path)
        if status == 200:
            break
        await asyncio.sleep(0.25)
    assert status == 200
    can_i = kube.kubectl(
        "auth", "can-i", "list", "pods", f"--as={user}", "-n", namespace, check=False
    )
    assert can_i.stdout.strip() == "yes"
