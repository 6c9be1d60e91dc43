"""Access to the Kubernetes API: client configuration and raw JSON requests.

Components talk to the API through kubernetes-asyncio's `ApiClient` (authentication, token
refresh, TLS) but read responses as raw JSON: objects reach sinks exactly as the API server
sent them, and watches are streamed line by line under our own inactivity timeout.
"""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson
from kubernetes_asyncio import client, config

from kevents import errors

logger = logging.getLogger(__name__)

TOKEN_PATH = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
Params = Sequence[tuple[str, str]]


class ApiError(errors.KeventsError):
    """The API server answered with a non-2xx status."""

    def __init__(self, status: int, reason: str, path: str) -> None:
        super().__init__(f"{status} {reason} for {path}")
        self.status = status
        self.reason = reason
        self.path = path


def in_cluster() -> bool:
    """True inside a pod: the service host is set and the ServiceAccount token is mounted."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and TOKEN_PATH.exists()


async def configuration() -> client.Configuration:
    """In-cluster config when running in a pod, else `$KUBECONFIG` (or ~/.kube/config)."""
    cfg = client.Configuration()
    if in_cluster():
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        await config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG"), client_configuration=cfg
        )
    return cfg


def _reason(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode(errors="replace")
    if isinstance(doc, dict):
        return str(doc.get("message") or doc.get("reason") or "")
    return ""


async def open_stream(
    api: client.ApiClient,
    path: str,
    params: Params = (),
    *,
    read_timeout: float | None = None,
) -> aiohttp.ClientResponse:
    """GET `path` and return the open response (the caller reads and releases it).

    `read_timeout` bounds the gap between two reads (a watch's inactivity watchdog).
    """
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout)
    response: aiohttp.ClientResponse = await api.call_api(
        path,
        "GET",
        query_params=list(params),
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
        _request_timeout=timeout,
    )
    if not 200 <= response.status < 300:
        body = await response.read()
        response.release()
        raise ApiError(response.status, _reason(body), path)
    return response


async def get_json(
    api: client.ApiClient, path: str, params: Params = (), *, read_timeout: float = 60
) -> dict[str, Any]:
    """GET `path` and decode the JSON object it returns."""
    response = await open_stream(api, path, params, read_timeout=read_timeout)
    try:
        body = await response.read()
    finally:
        response.release()
    doc = orjson.loads(body)
    if not isinstance(doc, dict):
        raise ApiError(response.status, "response is not a JSON object", path)
    return doc


def resource_path(
    group: str, version: str, resource: str, namespace: str | None = None, name: str = ""
) -> str:
    """The REST path of a collection (or one object), namespaced when `namespace` is given."""
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{resource}"
    return f"{base}/{name}" if name else base
