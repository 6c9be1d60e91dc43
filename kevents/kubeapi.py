"""The one Kubernetes client of kevents: JSON requests by path over kevents' own HTTP/1.1 pool.

Every component (controller, dispatcher, adapters) talks to the API through this module. The
controller handles core, apps, authorization, coordination and custom resources alike,
and refers to kinds it only learns at runtime (a sink `ref` to any Addressable), so it
speaks raw JSON by path (what client-go's dynamic client does) instead of typed models.

The transport is `kevents.connections` (llhttp through httptools, TLS from `ssl`) rather than
kubernetes-asyncio's `ApiClient` over aiohttp: importing those two costs ~17 MiB of RSS in
every deployable, more than a third of the ApiServerSource adapter (issue 24), for what is
here a handful of methods on keep-alive connections. `Config` says where the API server is
and how to authenticate: in a pod the ServiceAccount's CA and token (the token file is read
again every minute and after a 401: bound tokens rotate), else a kubeconfig, read by
kubernetes-asyncio's loader (imported only then: developers' machines and tests).

Objects are read as raw JSON, so they reach sinks exactly as the API server sent them, and
watches are streamed line by line under the caller's inactivity timeout. A `KubeApi` holds
connections: close it (`async with`, or `close()`).

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

import base64
import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import ssl
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit

from kevents import connections, errors

logger = logging.getLogger(__name__)

Json = dict[str, Any]

SERVICE_ACCOUNT = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_PATH = SERVICE_ACCOUNT / "token"
CA_PATH = SERVICE_ACCOUNT / "ca.crt"
TOKEN_RELOAD_SECONDS = 60.0
"""A token file is read again after this long: the kubelet rotates bound ServiceAccount
tokens well before they expire (at 80 % of their life, an hour at least)."""
BODY_LIMIT = 512 * 1024 * 1024
"""Bytes of one answer: a list of every object of a large kind fits (etcd keeps objects up to
1.5 MiB each); a watch's lines are read one at a time."""
CONNECTIONS = 32
"""Requests in flight to the API server at once (watches are not counted)."""

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


@dataclass(frozen=True, slots=True)
class Config:
    """Where the API server is and how to authenticate to it."""

    host: str
    """Its URL, e.g. https://10.96.0.1:443 (http:// only for test proxies on loopback)."""
    ca_file: str | None = None
    ca_data: str | None = None
    """PEM file, or PEM text, of the CAs its certificate is checked against (neither: the
    system's)."""
    cert_file: str | None = None
    key_file: str | None = None
    """A client certificate and key, for kubeconfigs that authenticate with one."""
    token: str | None = dataclasses.field(default=None, repr=False)  # never in a log line
    token_file: str | None = None
    """A bearer token, or the file it is read from (again every `TOKEN_RELOAD_SECONDS`).
    A kubeconfig's exec or auth-provider plugin gives its token once, at start."""
    verify: bool = True
    """False only for a kubeconfig's `insecure-skip-tls-verify`."""

    @classmethod
    def in_cluster(cls) -> Config:
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:
            host = f"[{host}]"  # IPv6
        return cls(f"https://{host}:{port}", ca_file=str(CA_PATH), token_file=str(TOKEN_PATH))

    @classmethod
    def of(cls, configuration: Any) -> Config:
        """From a kubernetes-asyncio `Configuration` (or an `ApiClient`, which carries one),
        as its kubeconfig loader fills it."""
        configuration = getattr(configuration, "configuration", configuration)
        keys: Mapping[str, str] = configuration.api_key or {}
        token = keys.get("BearerToken") or keys.get("authorization")
        if token:
            prefix = (configuration.api_key_prefix or {}).get("BearerToken")
            token = f"{prefix} {token}" if prefix else token
            token = token.removeprefix("Bearer ").strip()
        return cls(
            host=str(configuration.host),
            ca_file=configuration.ssl_ca_cert,
            cert_file=configuration.cert_file,
            key_file=configuration.key_file,
            token=token or None,
            verify=bool(configuration.verify_ssl),
        )

    def tls(self) -> ssl.SSLContext | None:
        """The TLS context for `host`, None for a plain http one."""
        if not self.host.startswith("https://"):
            return None
        context = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_data)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def from_kubeconfig(path: pathlib.Path) -> Config | None:
    """The current context of the kubeconfig at `path` when it names its credentials plainly
    (files, a token, a token file, the CA inline or as a file); None when it needs
    kubernetes-asyncio's loader (client certificates inline, exec and auth-provider
    plugins, basic auth). The common case reads it without importing that loader, which
    brings aiohttp and ~14 MiB with it (a component run out of a cluster, the benches)."""
    text = path.read_text()
    try:
        doc = json.loads(text)  # kubeconfigs written by tools are often JSON
    except ValueError:
        import yaml

        doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise errors.ConfigError([f"{path}: not a kubeconfig"])

    def named(section: str, name: object) -> dict[str, Any]:
        for entry in doc.get(section) or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                found = entry.get(section.rstrip("s"))
                return found if isinstance(found, dict) else {}
        raise errors.ConfigError([f"{path}: no {section.rstrip('s')} named {name!r}"])

    context = named("contexts", doc.get("current-context"))
    cluster = named("clusters", context.get("cluster"))
    user = named("users", context.get("user")) if context.get("user") else {}
    plain = {"client-certificate", "client-key", "token", "tokenFile"}
    if set(user) - plain:
        return None
    if "server" not in cluster:
        raise errors.ConfigError([f"{path}: cluster {context.get('cluster')!r} has no server"])

    def local(name: str | None) -> str | None:
        return None if name is None else str(path.parent / os.path.expanduser(name))

    ca_data = cluster.get("certificate-authority-data")
    return Config(
        host=str(cluster["server"]).rstrip("/"),
        ca_file=local(cluster.get("certificate-authority")),
        ca_data=base64.b64decode(ca_data).decode() if ca_data else None,
        cert_file=local(user.get("client-certificate")),
        key_file=local(user.get("client-key")),
        token=user.get("token"),
        token_file=local(user.get("tokenFile")),
        verify=not cluster.get("insecure-skip-tls-verify", False),
    )


def _kubeconfig_path() -> pathlib.Path:
    return pathlib.Path(os.environ.get("KUBECONFIG") or "~/.kube/config").expanduser()


async def configuration(kubeconfig: pathlib.Path | None = None) -> Config:
    """The current context of `kubeconfig` when given; else the in-cluster config when
    running in a pod, else `$KUBECONFIG`'s (or ~/.kube/config's)."""
    if kubeconfig is None:
        if in_cluster():
            return Config.in_cluster()
        kubeconfig = _kubeconfig_path()
    plain = from_kubeconfig(kubeconfig)
    if plain is not None:
        return plain
    from kubernetes_asyncio import client, config

    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    return Config.of(cfg)


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


class _Token:
    """The bearer token: fixed, or read from its file again once a minute (or when refused)."""

    def __init__(self, config: Config) -> None:
        self._fixed = config.token
        self._file = config.token_file
        self._value: str | None = None
        self._read_at = -TOKEN_RELOAD_SECONDS

    def header(self) -> str | None:
        if self._file is None:
            return f"Bearer {self._fixed}" if self._fixed else None
        if time.monotonic() - self._read_at >= TOKEN_RELOAD_SECONDS:
            self.reload()
        return f"Bearer {self._value}" if self._value else None

    def reload(self) -> bool:
        """Read the file now; True when the token changed (worth a second try after a 401)."""
        if self._file is None:
            return False
        before = self._value
        try:
            self._value = pathlib.Path(self._file).read_text().strip()
        except OSError as exc:
            logger.warning("Cannot read the API token from %s: %s.", self._file, exc)
        self._read_at = time.monotonic()
        return self._value != before


class KubeApi:
    """JSON requests by path to the API server `config` names (kubernetes-asyncio's
    `ApiClient` is taken for its configuration: tests and tools build one from a kubeconfig).

    Connections are opened in the running loop on first use; `close()` them."""

    def __init__(self, config: Config | Any) -> None:
        self.config = config if isinstance(config, Config) else Config.of(config)
        base = urlsplit(self.config.host)
        self._base = f"{base.scheme}://{base.netloc}"
        self._tls = self.config.host.startswith("https://")
        self._token = _Token(self.config)
        self._pool: connections.Pool | None = None

    @property
    def host(self) -> str:
        """The apiserver URL this client talks to (e.g. https://10.96.0.1:443)."""
        return self.config.host

    def _connections(self) -> connections.Pool:
        if self._pool is None:
            self._pool = connections.Pool(
                limit_per_host=CONNECTIONS, body_limit=BODY_LIMIT, tls=self.config.tls(),
                max_age=float("inf"),
            )  # fmt: skip
        return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    async def __aenter__(self) -> KubeApi:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

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
        where = self._endpoint(method, path, query)
        data = b"" if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            headers = self._headers(content_type if body is not None else None)
            try:
                response = await self._connections().send(where, headers, data, request_timeout)
            except TimeoutError as exc:  # a slow apiserver is transient, like a lost connection
                message = f"no answer within {request_timeout:g} s"
                raise Unreachable(0, "Timeout", message, method, path) from exc
            except connections.ClientError as exc:
                raise Unreachable(0, type(exc).__name__, str(exc), method, path) from exc
            if response.status == 401 and attempt == 1 and self._token.reload():
                continue  # the token rotated under us: once more with the new one
            break
        if response.truncated:
            message = f"answer larger than {BODY_LIMIT} bytes"
            raise ApiError(response.status, "TooLarge", message, method, path)
        if not 200 <= response.status < 300:
            raise _error(response.status, response.body, method, path)
        return cast(Json, json.loads(response.body)) if response.body else {}

    async def stream(
        self, path: str, query: Sequence[tuple[str, str]], *, read_timeout: float
    ) -> AsyncGenerator[Json, None]:
        """Yield the JSON lines of a watch; `read_timeout` bounds the silence between lines.

        The silence raises `TimeoutError` (a watch's inactivity watchdog); a connection lost
        mid-stream raises `Unreachable`, a line that is not JSON `ApiError`.
        """
        where = self._endpoint("GET", path, query)
        try:
            response, body = await self._connections().stream(
                where, self._headers(None), head_timeout=30.0
            )
        except TimeoutError as exc:
            raise Unreachable(0, "Timeout", "no answer within 30 s", "WATCH", path) from exc
        except connections.ClientError as exc:
            raise Unreachable(0, type(exc).__name__, str(exc), "WATCH", path) from exc
        try:
            if response.status == 401:
                self._token.reload()  # the next watch goes with the rotated token
            if not 200 <= response.status < 300:
                data = await _read(body, "WATCH", path)
                raise _error(response.status, data, "WATCH", path)
            while True:
                try:
                    line = await body.readline(read_timeout)
                except TimeoutError:
                    raise
                except connections.ClientError as exc:
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
            # A watch left unfinished (cancelled, closed early, watchdog) or finished: its
            # connection is dropped at once, never handed back half-read.
            body.close()

    def _endpoint(
        self, method: str, path: str, query: Sequence[tuple[str, str]]
    ) -> connections.Endpoint:
        url = self._base + path + (f"?{urlencode(list(query))}" if query else "")
        where = connections.endpoint(url, method, tls=self._tls)
        if where is None:
            raise ApiError(0, "InvalidURL", f"cannot request {url}", method, path)
        return where

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "kevents"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        authorization = self._token.header()
        if authorization is not None:
            headers["Authorization"] = authorization
        return headers

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


async def _read(body: connections.Stream, method: str, path: str) -> bytes:
    """An error answer's whole body (a Status); a connection lost while reading it is
    `Unreachable`."""
    try:
        return await body.read(64 * 1024)
    except connections.ClientError as exc:
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
