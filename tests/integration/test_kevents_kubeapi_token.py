"""`kevents.kubeapi` authenticating as a pod does, with a ServiceAccount token read from a file,
against the real API server: a rotated token is picked up at the first refusal, not after the
minute between reads; a token that stays bad is the API server's 401, not a retry loop."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest
from kubernetes_asyncio import client

from kevents import kubeapi
from tests.cluster import Kube


async def test_a_rotated_token_file_is_read_again_when_the_old_token_is_refused(
    kube: Kube, api_client: client.ApiClient, namespace: str, tmp_path: pathlib.Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("not-a-token-the-apiserver-knows\n")
    admin = kubeapi.Config.of(api_client)
    as_pod = dataclasses.replace(
        admin, cert_file=None, key_file=None, token=None, token_file=str(token_file)
    )
    async with kubeapi.KubeApi(as_pod) as api:
        with pytest.raises(kubeapi.ApiError) as refused:
            await api.request("GET", "/api")
        assert refused.value.status == 401

        # the kubelet writes the next token into the same file
        token = kube.kubectl("create", "token", "default", f"-n={namespace}").stdout.strip()
        token_file.write_text(token + "\n")
        found = await api.request("GET", "/api")
        assert found["kind"] == "APIVersions"
        # and it is the ServiceAccount speaking: RBAC applies to it, not to the admin
        with pytest.raises(kubeapi.Forbidden, match="system:serviceaccount:"):
            await api.request("GET", f"/api/v1/namespaces/{namespace}/secrets")


async def test_a_watch_streams_over_tls_with_the_token(
    kube: Kube, api_client: client.ApiClient, namespace: str, tmp_path: pathlib.Path
) -> None:
    kube.kubectl(
        "create", "rolebinding", "view", "--clusterrole=view",
        f"--serviceaccount={namespace}:default", f"-n={namespace}",
    )  # fmt: skip
    token_file = tmp_path / "token"
    token_file.write_text(kube.kubectl("create", "token", "default", f"-n={namespace}").stdout)
    admin = kubeapi.Config.of(api_client)
    as_pod = dataclasses.replace(
        admin, cert_file=None, key_file=None, token=None, token_file=str(token_file)
    )
    path = kubeapi.Resource("", "v1", "configmaps").path(namespace)
    async with kubeapi.KubeApi(as_pod) as api:
        listed = await api.request("GET", path)
        events = api.watch(
            path, [("resourceVersion", listed["metadata"]["resourceVersion"])], read_timeout=30
        )
        kube.kubectl("create", "configmap", "watched", f"-n={namespace}", "--from-literal=k=v")
        async for kind, obj in events:
            if obj["metadata"]["name"] == "watched":
                assert kind == "ADDED"
                assert obj["data"] == {"k": "v"}
                break
        await events.aclose()
