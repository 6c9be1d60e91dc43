"""Knative's own data-plane binaries as benchmark peers, run out of cluster on loopback.

`hack/build-knative-peers` builds them from the knative.dev/eventing module (through the Go
module proxy, cached). Each runs as its own process against the local API server with the
environment contract of its Deployment in Knative's `config/`: a system namespace of its own
per run (`SYSTEM_NAMESPACE`) holding Knative's config maps `config-logging`,
`config-observability`, `config-features`, `config-leader-election` and `config-tracing` as
the module ships them (defaults: metrics and tracing off, as ours in the benches), and the
`eventpolicies`/`eventtypes` CRDs its informers list (created when missing, left in place).

The IMC dispatcher is namespace-scoped (`NAMESPACE` + the channel's
`eventing.knative.dev/scope: namespace` annotation), so it serves only the bench's channel,
not other engineers' channels on the shared cluster. It listens on its fixed ports 8080 (HTTP)
and 8443 (HTTPS): `require_free()` says so when another process holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import pathlib
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import yaml
from kubernetes_asyncio import client

VERSION = "v0.49.2"
CONFIG_MAPS = ("logging", "observability", "features", "leader-election", "tracing")
"""Files of the module's config/core/configmaps/ the binaries' config watchers need."""
CRDS = ("eventpolicy", "eventtype")
"""Files of the module's config/core/resources/ whose kinds the IMC dispatcher's informers list."""
IMC_DISPATCHER_PORTS = (8080, 8443)
SCOPE_ANNOTATION = {"eventing.knative.dev/scope": "namespace"}

_REPO = pathlib.Path(__file__).resolve().parent.parent


@functools.cache
def binaries() -> pathlib.Path:
    """The directory of the built binaries (built on first use, a few minutes fresh)."""
    out = subprocess.run(
        [str(_REPO / "hack" / "build-knative-peers")],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "KNATIVE_EVENTING_VERSION": VERSION},
    )
    return pathlib.Path(out.stdout.strip().splitlines()[-1])


@functools.cache
def module_dir() -> pathlib.Path:
    """knative.dev/eventing@VERSION in the Go module cache (the build downloaded it)."""
    cache = subprocess.run(
        ["go", "env", "GOMODCACHE"], check=True, stdout=subprocess.PIPE, text=True
    ).stdout.strip()
    return pathlib.Path(cache) / "knative.dev" / f"eventing@{VERSION}"


def require_free(ports: tuple[int, ...], host: str = "127.0.0.1") -> None:
    """Fail clearly when a fixed port of a Knative binary is taken."""
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise RuntimeError(
                    f"port {port} is in use: Knative's binary listens on it (fixed in its code)"
                ) from exc


def _documents(path: pathlib.Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@contextlib.asynccontextmanager
async def system_namespace(api: client.ApiClient) -> AsyncIterator[str]:
    """A fresh system namespace with Knative's config maps; the CRDs ensured."""
    extensions = client.ApiextensionsV1Api(api)
    for name in CRDS:
        for crd in _documents(module_dir() / "config" / "core" / "resources" / f"{name}.yaml"):
            try:
                await extensions.create_custom_resource_definition(crd)  # type: ignore[arg-type]
            except client.ApiException as exc:
                if exc.status != 409:  # already there (ours or Knative's): leave it
                    raise
    core = client.CoreV1Api(api)
    namespace = f"bench-knative-{uuid.uuid4().hex[:6]}"
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        for name in CONFIG_MAPS:
            for cm in _documents(module_dir() / "config" / "core" / "configmaps" / f"{name}.yaml"):
                cm["metadata"]["namespace"] = namespace
                await core.create_namespaced_config_map(namespace, cm)  # type: ignore[arg-type]
        yield namespace
    finally:
        await core.delete_namespace(namespace)


def environment(kubeconfig: str, system: str, component: str) -> dict[str, str]:
    """The env of a Knative data-plane Deployment, out of cluster."""
    return {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "SYSTEM_NAMESPACE": system,
        "POD_NAME": f"{component}-bench",
        "CONTAINER_NAME": component,
        "CONFIG_LOGGING_NAME": "config-logging",
        "CONFIG_OBSERVABILITY_NAME": "config-observability",
        "METRICS_DOMAIN": "knative.dev/eventing",
        "GOMAXPROCS": os.environ.get("GOMAXPROCS", ""),
    }


async def spawn_imc_dispatcher(
    kubeconfig: str, system: str, namespace: str, pin: str = ""
) -> asyncio.subprocess.Process:
    """Knative's IMC dispatcher serving the channels of `namespace` annotated with
    `SCOPE_ANNOTATION`, on 127.0.0.1:8080 (all interfaces: its listen address is fixed)."""
    require_free(IMC_DISPATCHER_PORTS)
    env = environment(kubeconfig, system, "dispatcher")
    env.update(
        NAMESPACE=namespace,
        MAX_IDLE_CONNS="1000",  # config/channels/in-memory-channel/deployments/dispatcher.yaml
        MAX_IDLE_CONNS_PER_HOST="1000",
        METRICS_DOMAIN="knative.dev/inmemorychannel-dispatcher",
    )
    if not env["GOMAXPROCS"]:
        del env["GOMAXPROCS"]
    return await asyncio.create_subprocess_exec(
        *(("taskset", "-c", pin) if pin else ()),
        str(binaries() / "channel_dispatcher"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def ready_status(namespace: str, name: str) -> dict[str, Any]:
    """The status Knative's IMC controller would write (the dispatcher serves Ready channels
    only): Ready at generation 1, addressed by its Service's host."""
    return {
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True"}],
            "address": {"url": f"http://{name}-kn-channel.{namespace}.svc.cluster.local"},
        }
    }


async def spawn_mt_broker(
    kubeconfig: str, system: str, ingress_port: int, filter_port: int, pin: str = ""
) -> asyncio.subprocess.Process:
    """Knative's MT broker ingress and filter as the children of one shell (so the bench
    measures their CPU and RSS together, as it does for our one dispatcher process), on
    loopback ports of their own; terminating the shell stops both."""
    env = environment(kubeconfig, system, "broker")
    if not env["GOMAXPROCS"]:
        del env["GOMAXPROCS"]
    env.update(
        NAMESPACE=system,
        INGRESS_PORT=str(ingress_port),
        INGRESS_PORT_HTTPS=str(_free_port()),
        FILTER_PORT=str(filter_port),
        FILTER_PORT_HTTPS=str(_free_port()),
        METRICS_DOMAIN="knative.dev/internal/eventing",
    )
    taskset = f"taskset -c {pin} " if pin else ""
    directory = binaries()
    script = (
        'trap "kill 0" TERM; '
        f"PROFILING_PORT={_free_port()} {taskset}{directory / 'ingress'} & "
        f"PROFILING_PORT={_free_port()} {taskset}{directory / 'filter'} & wait"
    )
    return await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        script,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # `kill 0` stops this group only
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def broker_status(channel_url: str, ingress_url: str) -> dict[str, Any]:
    """The status Knative's MT broker controller would write: Ready, its ingress address and
    its trigger channel's address (where the ingress sends)."""
    return {
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True"}],
            "address": {"url": ingress_url},
            "annotations": {"knative.dev/channelAddress": channel_url},
        }
    }
