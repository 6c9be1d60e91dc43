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

Knative's binaries list `eventtypes` at `eventing.knative.dev/v1beta3`, which our EventType
CRD does not serve (v1beta2 only; Knative serves v1beta1-3 through its conversion webhook).
Rather than change the shared cluster's CRD, they reach the API server through a loopback
proxy (`_ApiProxy`, started by `system_namespace()`, used by `environment()`) that answers
that one collection with an empty list and an idle watch and forwards everything else with
the admin credentials.

The source adapters (`spawn_adapter`) run with the env contract the Knative controller gives
their Deployments. `mtping` watches PingSources in every namespace (its informers have no
namespace scope) and serves the Ready ones: on the shared cluster it would also tick other
engineers' Ready PingSources, whose cluster-DNS sinks do not resolve from the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import json
import os
import pathlib
import re
import socket
import ssl
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import yaml
from aiohttp import web
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


UNSERVED = re.compile(r"^/apis/eventing\.knative\.dev/v1beta3/(namespaces/[^/]+/)?eventtypes$")
"""The collection Knative's informers list that our CRDs do not serve."""
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class _ApiProxy:
    """Loopback HTTP in front of the API server for Knative's binaries (see the module
    docstring); `kubeconfig` is the file they are given."""

    def __init__(self, configuration: client.Configuration) -> None:
        self._upstream = str(configuration.host).rstrip("/")
        self._ssl = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.cert_file:
            self._ssl.load_cert_chain(configuration.cert_file, configuration.key_file)
        self._headers = {
            k: v for k, v in (configuration.api_key or {}).items() if k == "authorization"
        }
        self.kubeconfig = ""

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=0),
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=False,
        )
        server = web.Server(functools.partial(self._handle, session))
        runner = web.ServerRunner(server, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "proxy",
            "clusters": [{"name": "proxy", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "proxy", "user": {}}],
            "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}],
        }  # fmt: skip
        with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig") as file:
            json.dump(config, file)
            file.flush()
            self.kubeconfig = file.name
            try:
                yield file.name
            finally:
                self.kubeconfig = ""
                await runner.cleanup()
                await session.close()

    async def _handle(
        self, session: aiohttp.ClientSession, request: web.BaseRequest
    ) -> web.StreamResponse:
        if UNSERVED.match(request.path):
            return await self._empty(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        headers.update(self._headers)
        body = await request.read()
        async with session.request(
            request.method, self._upstream + request.path_qs, headers=headers, data=body or None
        ) as upstream:
            response = web.StreamResponse(
                status=upstream.status,
                headers={
                    k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS
                },
            )
            await response.prepare(request)
            with contextlib.suppress(ConnectionResetError):  # a watcher that went away
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            return response

    async def _empty(self, request: web.BaseRequest) -> web.StreamResponse:
        """No EventTypes: an empty list, or a watch that only says its initial list is over
        (a bookmark, for clients that stream lists) and then stays quiet."""
        kind = {"apiVersion": "eventing.knative.dev/v1beta3"}
        if request.query.get("watch") not in ("true", "1"):
            return web.json_response(
                {**kind, "kind": "EventTypeList", "metadata": {"resourceVersion": "1"}, "items": []}
            )
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # a watcher that went away
            await self._idle_watch(request, response, kind)
        return response

    async def _idle_watch(
        self, request: web.BaseRequest, response: web.StreamResponse, kind: dict[str, str]
    ) -> None:
        if request.query.get("sendInitialEvents") == "true":
            end = {"k8s.io/initial-events-end": "true"}
            bookmark = {"resourceVersion": "1", "annotations": end}
            event = {
                "type": "BOOKMARK",
                "object": {**kind, "kind": "EventType", "metadata": bookmark},
            }
            await response.write(json.dumps(event).encode() + b"\n")
        await asyncio.sleep(float(request.query.get("timeoutSeconds", "300")))
        await response.write_eof()


_PROXY: list[_ApiProxy] = []
"""The proxy of the current system namespace (one at a time)."""


@contextlib.asynccontextmanager
async def system_namespace(api: client.ApiClient) -> AsyncIterator[str]:
    """A fresh system namespace with Knative's config maps; the CRDs ensured; the API proxy
    the binaries reach the API server through (see the module docstring) running."""
    async with contextlib.AsyncExitStack() as stack:
        proxy = _ApiProxy(api.configuration)
        await stack.enter_async_context(proxy.serving())
        _PROXY.append(proxy)
        stack.callback(_PROXY.remove, proxy)
        yield await stack.enter_async_context(_system_namespace(api))


@contextlib.asynccontextmanager
async def _system_namespace(api: client.ApiClient) -> AsyncIterator[str]:
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
        "KUBECONFIG": _PROXY[-1].kubeconfig if _PROXY else kubeconfig,
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


async def spawn_adapter(
    binary: str, kubeconfig: str, system: str, extra: dict[str, str], pin: str = ""
) -> asyncio.subprocess.Process:
    """One of Knative's source adapters (`apiserver_receive_adapter`, `mtping`) with the
    adapter env contract of its Deployment (`extra`: K_SINK, NAMESPACE, K_SOURCE_CONFIG, ...;
    logging, observability and leader election at the module's defaults). Its health probe
    port is fixed at 8080 (it carries on without it when taken); its profiling server gets a
    free port."""
    env = environment(kubeconfig, system, binary)
    if not env["GOMAXPROCS"]:
        del env["GOMAXPROCS"]
    env.update(
        K_LOGGING_CONFIG="",
        K_OBSERVABILITY_CONFIG="{}",
        K_LEADER_ELECTION_CONFIG="",
        PROFILING_PORT=str(_free_port()),
        **extra,
    )
    return await asyncio.create_subprocess_exec(
        *(("taskset", "-c", pin) if pin else ()),
        str(binaries() / binary),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
