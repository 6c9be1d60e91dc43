"""The one Kubernetes client of kevents: JSON requests by path on kubernetes-asyncio's `ApiClient`.

Every component (controller, dispatcher, adapters) talks to the API through this module. The
controller handles core, apps, authorization, coordination and custom resources alike,
and refers to kinds it only learns at runtime (a sink `ref` to any Addressable), so it
speaks raw JSON by path (what client-go's dynamic client does) instead of the generated
typed models. `ApiClient` still provides TLS, auth and token refresh.

Objects are read as raw JSON, so they reach sinks exactly as the API server sent them, and
watches are streamed line by line under the caller's inactivity timeout.

Errors (all `errors.KeventsError`; library errors chained with `raise ... from`):

```
ApiError            a non-2xx answer: status, reason, apiserver message, method, path
 ├── NotFound       404
 ├── Forbidden      403 (a missing RBAC permission: the message names verb and resource)
 │    └── NamespaceTerminating  a create in a namespace being deleted
 ├── Conflict       409 (stale resourceVersion, or already exists)
 ├── Gone           410 (resourceVersion too old: a watch must list again)
 └── Unreachable    no HTTP answer at all (refused, reset, TLS failure); status 0
```
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

import aiohttp
from kubernetes_asyncio import client, config

from kevents import errors

logger = logging.getLogger(__name__)

Json = dict[str, Any]

TOKEN_PATH = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/token")

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class ApiError(errors.KeventsError):
    """The apiserver answered with a non-2xx status."""

    def __init__(self, status: int, reason: str, message: str, method: str, path: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{method} {path}: {status} {reason}: {message}")


class NotFound(ApiError):
    """404."""


class Forbidden(ApiError):
    """403: the caller lacks a permission (RBAC)."""


class NamespaceTerminating(Forbidden):
    """403 from the apiserver's NamespaceLifecycle admission: nothing new can be created in a
    namespace being deleted (its Status carries `details.causes[].reason: NamespaceTerminating`)."""


class Conflict(ApiError):
    """409: resourceVersion conflict or already exists."""


class Gone(ApiError):
    """410: the requested resourceVersion is too old (watch must re-list)."""


class Unreachable(ApiError):
    """No HTTP answer at all (connection refused, reset, TLS failure)."""


_BY_STATUS: dict[int, type[ApiError]] = {403: Forbidden, 404: NotFound, 409: Conflict, 410: Gone}


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


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource collection: group/version/plural, namespaced or cluster-scoped."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        return base


class KubeApi:
    """JSON requests by path over an authenticated `ApiClient`."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client

    @property
    def host(self) -> str:
        """The apiserver URL this client talks to (e.g. https://10.96.0.1:443)."""
        return str(self.api_client.configuration.host)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        query: Sequence[tuple[str, str]] = (),
        content_type: str = "application/json",
        request_timeout: float = 30.0,
    ) -> Json:
        try:
            response = await self._send(method, path, body, query, content_type, request_timeout)
            async with response:
                data = await _read(response, method, path)
        except TimeoutError as exc:  # a slow apiserver is transient, like a lost connection
            message = f"no answer within {request_timeout:g} s"
            raise Unreachable(0, "Timeout", message, method, path) from exc
        if not 200 <= response.status < 300:
            raise _error(response.status, data, method, path)
        return cast(Json, json.loads(data)) if data else {}

    async def stream(
        self, path: str, query: Sequence[tuple[str, str]], *, read_timeout: float
    ) -> AsyncGenerator[Json, None]:
        """Yield the JSON lines of a watch; `read_timeout` bounds the silence between lines.

        The silence raises `TimeoutError` (a watch's inactivity watchdog); a connection lost
        mid-stream raises `Unreachable`, a line that is not JSON `ApiError`.
        """
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=read_timeout)
        response = await self._send("GET", path, None, query, "application/json", timeout)
        try:
            if not 200 <= response.status < 300:
                raise _error(response.status, await _read(response, "WATCH", path), "WATCH", path)
            while True:
                try:
                    line = await response.content.readline()
                except TimeoutError:
                    raise
                except (aiohttp.ClientError, OSError) as exc:
                    raise Unreachable(0, type(exc).__name__, str(exc), "WATCH", path) from exc
                if not line:
                    return  # the server ended the watch (its timeoutSeconds)
                if line.strip():
                    try:
                        doc = json.loads(line)
                    except ValueError as exc:
                        status = response.status
                        raise ApiError(status, "InvalidJSON", str(exc), "WATCH", path) from exc
                    yield cast(Json, doc)
        finally:
            # A watch is left unfinished (cancelled, closed early, watchdog): close its
            # connection now rather than hand a half-read one back to the pool. Abort it:
            # a TLS close would wait up to 30 s (asyncio's ssl_shutdown_timeout) for the
            # peer's close_notify, keeping the socket open, from a peer that may be the
            # reason we gave up (watchdog), or past the event loop's end (shutdown).
            connection = response.connection
            if connection is not None and connection.transport is not None:
                connection.transport.abort()
            response.close()

    async def watch(
        self, path: str, query: Sequence[tuple[str, str]], *, read_timeout: float
    ) -> AsyncGenerator[tuple[str, Json], None]:
        """Yield a watch's `(type, object)` events: ADDED, MODIFIED, DELETED, BOOKMARK.

        An ERROR event raises the error it carries (`Gone` for an expired resourceVersion).
        `query` holds the selectors and `resourceVersion`; `watch=true` is added here.
        """
        events = self.stream(path, [*query, ("watch", "true")], read_timeout=read_timeout)
        # aclosing: an error raised here (an ERROR event) closes the stream's connection now,
        # not whenever the suspended generator is garbage-collected.
        async with contextlib.aclosing(events):
            async for event in events:
                kind = str(event.get("type", ""))
                obj = event.get("object") or {}
                if kind == "ERROR":
                    raise _status_error(obj, "WATCH", path)
                yield kind, obj

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Json:
        return await self.request("GET", resource.path(namespace, name))

    async def get_or_none(
        self, resource: Resource, namespace: str | None, name: str
    ) -> Json | None:
        try:
            return await self.get(resource, namespace, name)
        except NotFound:
            return None

    async def create(
        self, resource: Resource, namespace: str | None, body: Mapping[str, Any]
    ) -> Json:
        return await self.request("POST", resource.path(namespace), body=body)

    async def delete(self, resource: Resource, namespace: str | None, name: str) -> None:
        """Delete the object (background propagation); a missing one is not an error."""
        try:
            await self.request("DELETE", resource.path(namespace, name))
        except NotFound:
            pass

    async def merge_patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str = "",
    ) -> Json:
        path = resource.path(namespace, name) + (f"/{subresource}" if subresource else "")
        return await self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    async def apply(
        self, resource: Resource, namespace: str | None, body: Mapping[str, Any], manager: str
    ) -> Json:
        """Server-side apply: create or update to exactly the fields this manager owns."""
        name = body["metadata"]["name"]
        return await self.request(
            "PATCH",
            resource.path(namespace, name),
            body=body,
            query=[("fieldManager", manager), ("force", "true")],
            content_type=APPLY_PATCH,
        )

    async def _send(
        self,
        method: str,
        path: str,
        body: object,
        query: Sequence[tuple[str, str]],
        content_type: str,
        request_timeout: float | aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            response = await self.api_client.call_api(
                path,
                method,
                query_params=list(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=request_timeout,
            )
        except aiohttp.ClientError as exc:
            raise Unreachable(0, type(exc).__name__, str(exc), method, path) from exc
        return cast(aiohttp.ClientResponse, response)


async def _read(response: aiohttp.ClientResponse, method: str, path: str) -> bytes:
    """The whole body; a connection lost while reading it is `Unreachable`."""
    try:
        return await response.read()
    except TimeoutError:
        raise
    except (aiohttp.ClientError, OSError) as exc:
        raise Unreachable(0, type(exc).__name__, str(exc), method, path) from exc


def _status_error(status: Mapping[str, Any], method: str, path: str) -> ApiError:
    """The error a `Status` object (an error answer's body, a watch's ERROR event) describes."""
    code = int(status.get("code") or 500)
    reason, message = str(status.get("reason", "")), str(status.get("message", ""))
    return _error_class(code, status)(code, reason, message, method, path)


def _error_class(code: int, status: Mapping[str, Any]) -> type[ApiError]:
    details = status.get("details")
    causes = (details.get("causes") if isinstance(details, Mapping) else None) or []
    if code == 403 and any(
        isinstance(c, Mapping) and c.get("reason") == "NamespaceTerminating" for c in causes
    ):
        return NamespaceTerminating
    return _BY_STATUS.get(code, ApiError)


def _error(status: int, data: bytes, method: str, path: str) -> ApiError:
    reason, message = "", data.decode("utf-8", "replace")[:500]
    payload: Any = None
    try:
        payload = json.loads(data)
        reason = str(payload.get("reason", ""))
        message = str(payload.get("message", message))
    except ValueError:
        pass
    kind = _error_class(status, payload if isinstance(payload, Mapping) else {})
    return kind(status, reason, message, method, path)
