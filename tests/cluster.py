"""Pytest fixtures for tests against a real Kubernetes control plane.

    kube            session: a `Kube` handle (kubeconfig path, API URL, kubectl runner)
    api_client      function: a kubernetes-asyncio `ApiClient` on the admin kubeconfig
    namespace       function: a fresh namespace, deleted after the test

By default the local control plane of `hack/cluster` is started (or reused when it already
runs). With `KEVENTS_CLUSTER=kind` and a Docker engine plus `kind` on the machine, the same
tests run against a kind cluster made by pytest-kind instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

import pytest
from kubernetes_asyncio import client, config

REPO = pathlib.Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Kube:
    """A running cluster the tests may use."""

    kubeconfig: pathlib.Path
    kubectl_path: str
    state_dir: pathlib.Path | None
    """The local cluster's state folder (None on kind)."""

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster and return the completed process."""
        proc = subprocess.run(
            [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
            )
        return proc

    def apply(self, manifest: str, namespace: str | None = None) -> None:
        ns = [f"--namespace={namespace}"] if namespace else []
        self.kubectl("apply", *ns, "-f", "-", input=manifest)

    def install_crds(self, *crds: str, folder: str = "manifests") -> None:
        """Apply every CRD of `folder` (its `300-*.yaml`) and wait until the named ones
        (`plural.group`) are served."""
        files = sorted((REPO / folder).glob("300-*.yaml"))
        self.kubectl("apply", *(f"--filename={f}" for f in files))
        if crds:
            self.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                         *(f"crd/{crd}" for crd in crds))  # fmt: skip

    def get_json(self, *args: str) -> dict[str, object]:
        out = self.kubectl("get", *args, "-o", "json").stdout
        result: dict[str, object] = json.loads(out)
        return result


def _local_cluster() -> Kube:
    cluster = REPO / "hack" / "cluster"
    proc = subprocess.run(
        [str(cluster), "up"], capture_output=True, text=True, timeout=1800, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hack/cluster up failed:\n{proc.stderr}\n{proc.stdout}")
    kubeconfig = pathlib.Path(proc.stdout.strip().splitlines()[-1])
    state = kubeconfig.parent
    return Kube(kubeconfig=kubeconfig, kubectl_path=str(state / "bin" / "kubectl"), state_dir=state)


def _kind_cluster(names: Sequence[str]) -> Iterator[Kube]:
    from pytest_kind import KindCluster  # only importable where kind is wanted

    kind_bin, kubectl_bin = shutil.which("kind"), shutil.which("kubectl")
    kind = KindCluster(
        "kevents-" + "-".join(names),
        kind_path=pathlib.Path(kind_bin) if kind_bin else None,
        kubectl_path=pathlib.Path(kubectl_bin) if kubectl_bin else None,
    )
    kind.create()
    try:
        yield Kube(
            kubeconfig=pathlib.Path(kind.kubeconfig_path),
            kubectl_path=str(kind.kubectl_path),
            state_dir=None,
        )
    finally:
        kind.delete()


SYSTEM_CONTROLLERS = ("kevents-controller", "kevents-dispatcher", "pingsource-mt-adapter")
"""Installed components that would reconcile or fire alongside the in-process ones of the
integration tests; paused for the session (the e2e tests install their own)."""


def _pause_installed(kube: Kube) -> dict[str, int]:
    paused: dict[str, int] = {}
    for name in SYSTEM_CONTROLLERS:
        proc = kube.kubectl(
            "-n", "kevents-system", "get", "deployment", name,
            "-o", "jsonpath={.spec.replicas}", check=False,
        )  # fmt: skip
        if proc.returncode == 0 and proc.stdout.strip() not in ("", "0"):
            paused[name] = int(proc.stdout)
            kube.kubectl("-n", "kevents-system", "scale", "deployment", name, "--replicas=0")
    _admission_policy(kube, "Ignore")  # paused here or by another session: nobody serves it
    for name in paused:
        kube.kubectl(
            "-n", "kevents-system", "wait", "--for=delete", "pod",
            f"--selector=app.kubernetes.io/name={name}", "--timeout=60s", check=False,
        )  # fmt: skip
    return paused


KINDS_ADMISSION = (
    ("validatingwebhookconfiguration", "validation.webhook.kevents.knative.dev"),
    ("mutatingwebhookconfiguration", "webhook.kevents.knative.dev"),
)
"""The installed webhooks of kevents' kinds (failurePolicy Fail, served by the controller):
Ignore while the installed controller is paused (by this session or another one that is
still running), or no test could write a PingSource; Fail again when this session gives the
controller its replicas back."""


def _admission_policy(kube: Kube, policy: str) -> None:
    patch = json.dumps([{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": policy}])
    for kind, name in KINDS_ADMISSION:
        kube.kubectl("patch", kind, name, "--type=json", f"--patch={patch}", check=False)


@pytest.fixture(scope="session")
def kube() -> Iterator[Kube]:
    """The cluster under test: the local control plane unless KEVENTS_CLUSTER=kind.

    An installed kevents controller (say, from `hack/up`) is scaled to zero for the session
    and restored afterwards, so it cannot fight the reconcilers the tests run in-process."""
    if os.environ.get("KEVENTS_CLUSTER") == "kind":
        yield from _kind_cluster(["e2e"])
        return
    cluster = _local_cluster()
    paused = _pause_installed(cluster)
    try:
        yield cluster
    finally:
        for name, replicas in paused.items():
            cluster.kubectl(
                "-n", "kevents-system", "scale", "deployment", name, f"--replicas={replicas}",
                check=False,
            )  # fmt: skip
        if paused.get("kevents-controller"):
            _admission_policy(cluster, "Fail")


@pytest.fixture
async def api_client(kube: Kube) -> AsyncIterator[client.ApiClient]:
    """A kubernetes-asyncio client authenticated as cluster admin."""
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(kube.kubeconfig), client_configuration=cfg)
    async with client.ApiClient(configuration=cfg) as api:
        yield api


async def _settled(core: client.CoreV1Api, name: str) -> None:
    """Wait for what the controller-manager adds to a new namespace (the `default`
    ServiceAccount, the `kube-root-ca.crt` ConfigMap), so tests watching the namespace see
    only their own objects and pods can be admitted."""
    for _ in range(200):
        accounts = await core.list_namespaced_service_account(name)
        maps = await core.list_namespaced_config_map(name)
        if any(a.metadata.name == "default" for a in accounts.items) and any(
            m.metadata.name == "kube-root-ca.crt" for m in maps.items
        ):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"namespace {name} never got its default ServiceAccount and root CA")


@pytest.fixture
async def namespace(api_client: client.ApiClient) -> AsyncIterator[str]:
    """A fresh, settled namespace for one test; deleted (not awaited) afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api_client)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    await _settled(core, name)
    try:
        yield name
    finally:
        await core.delete_namespace(name)
