"""Where pods reach the apiserver and cluster DNS, kept up to date.

The apiserver runs with `--endpoint-reconciler-type=none` on loopback, which pods can't reach.
The agent stands in for the endpoint reconciler: it forwards TCP from the node's bridge address
(reachable from every pod) to the apiserver on 127.0.0.1, and points the `default/kubernetes`
Service's EndpointSlice there; kube-proxy then routes 10.96.0.1:443 to it. Likewise it keeps the
selector-less `kube-system/kube-dns` Service (ClusterIP 10.96.0.10) and its EndpointSlice
pointing at CoreDNS on the bridge address. These writes use the admin identity: a kubelet
may not write Services or EndpointSlices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from kevents import kubeapi

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MANAGED_BY = "kevents-node-agent"
RECONCILE_SECONDS = 30.0
SERVICES = kubeapi.Resource("", "v1", "services")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


async def forward(listen_host: str, listen_port: int, target_host: str, target_port: int) -> None:
    """A TCP forwarder listen -> target, until cancelled."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            writer.close()
            return
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_pipe(reader, up_writer))
            tg.create_task(_pipe(up_reader, writer))

    server = await asyncio.start_server(handle, listen_host, listen_port, reuse_address=True)
    log.info(
        "Forwarding %s:%d to the apiserver at %s:%d.",
        listen_host,
        listen_port,
        target_host,
        target_port,
    )
    async with server:
        await server.serve_forever()


def endpoint_slice(namespace: str, service: str, ip: str, ports: list[Obj]) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": service,
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
        "ports": ports,
    }


def endpoints(namespace: str, service: str, ip: str, ports: list[Obj]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": service,
            "namespace": namespace,
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [{"addresses": [{"ip": ip}], "ports": ports}],
    }


def kube_dns_service(cluster_dns: str) -> Obj:
    ports = [
        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
        },
        "spec": {"clusterIP": cluster_dns, "ports": ports},
    }


async def _put(client: kubeapi.KubeApi, collection: str, body: Obj) -> None:
    name = body["metadata"]["name"]
    try:
        await client.request("POST", collection, body=body)
    except kubeapi.Conflict:
        current = await client.request("GET", f"{collection}/{name}")
        body = {
            **body,
            "metadata": {
                **body["metadata"],
                "resourceVersion": current["metadata"]["resourceVersion"],
            },
        }
        await client.request("PUT", f"{collection}/{name}", body=body)


async def reconcile(
    client: kubeapi.KubeApi, gateway: str, apiserver_port: int, cluster_dns: str
) -> None:
    api_ports = [{"name": "https", "port": apiserver_port, "protocol": "TCP"}]
    await _put(
        client,
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        endpoint_slice("default", "kubernetes", gateway, api_ports),
    )
    await _put(
        client,
        "/api/v1/namespaces/default/endpoints",
        endpoints("default", "kubernetes", gateway, api_ports),
    )
    svc = await client.get_or_none(SERVICES, "kube-system", "kube-dns")
    if svc is None:
        with contextlib.suppress(kubeapi.ApiError):
            await client.create(SERVICES, "kube-system", kube_dns_service(cluster_dns))
    dns_ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    ]
    await _put(
        client,
        "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
        endpoint_slice("kube-system", "kube-dns", gateway, dns_ports),
    )


async def run(client: kubeapi.KubeApi, gateway: str, apiserver_port: int, cluster_dns: str) -> None:
    """Keep the endpoints right (someone may delete them), every RECONCILE_SECONDS."""
    while True:
        try:
            await reconcile(client, gateway, apiserver_port, cluster_dns)
        except (kubeapi.ApiError, OSError, TimeoutError) as err:
            log.warning("Reconciling the kubernetes/kube-dns endpoints failed: %s", err)
        await asyncio.sleep(RECONCILE_SECONDS)
