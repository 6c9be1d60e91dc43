"""Sink resolution shared by every source (knative.dev/pkg/resolver `URIResolver`).

A `Destination` is `ref`, `uri`, or `ref` + relative `uri`:

- `ref` to a core Service (`v1`/`Service`) -> `http://NAME.NAMESPACE.svc.cluster.local`
  (the Service must exist);
- `ref` to anything else -> the object's `status.address.url` (any Addressable: channels,
  brokers, Knative Services ...), found through discovery and read as plain JSON, or the
  entry of `status.addresses[]` named by `ref.address`;
- `ref` + relative `uri` -> the uri resolved against the ref's URL (RFC 3986);
- `uri` alone -> used as is (the CRD schema already requires it to be absolute).

A failure raises `SinkError` whose message names the object, for `SinkProvided=False`.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import NotRequired, TypedDict

from controller.framework import discovery
from kevents import kubeapi

SERVICES = kubeapi.Resource("", "v1", "services")


class KReferenceDict(TypedDict):
    kind: str
    name: str
    apiVersion: NotRequired[str]
    namespace: NotRequired[str]
    group: NotRequired[str]
    address: NotRequired[str]


class DestinationDict(TypedDict, total=False):
    ref: KReferenceDict
    uri: str
    CACerts: str
    audience: str


@dataclass(frozen=True, slots=True)
class Ref:
    api_version: str
    kind: str
    namespace: str
    name: str
    address: str = ""

    @property
    def is_service(self) -> bool:
        return self.api_version == "v1" and self.kind == "Service"

    def describe(self) -> str:
        return f'{self.kind} "{self.namespace}/{self.name}" ({self.api_version})'


@dataclass(frozen=True, slots=True)
class Address:
    """A resolved sink (duckv1.Addressable)."""

    url: str
    ca_certs: str | None = None
    audience: str | None = None


class SinkError(Exception):
    """The sink cannot be resolved (yet); `reason` is a CamelCase condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


def ref_of(destination: DestinationDict, default_namespace: str) -> Ref | None:
    """The destination's ref with its namespace defaulted to the parent's."""
    raw = destination.get("ref")
    if raw is None:
        return None
    api_version = raw.get("apiVersion") or (f"{raw['group']}/" if raw.get("group") else "")
    return Ref(
        api_version=api_version,
        kind=raw["kind"],
        namespace=raw.get("namespace") or default_namespace,
        name=raw["name"],
        address=raw.get("address", ""),
    )


def service_url(name: str, namespace: str) -> str:
    return f"http://{name}.{namespace}.svc.cluster.local"


def join(base: str, uri: str | None) -> str:
    """Resolve a relative `uri` against the ref's URL; no uri keeps the base unchanged."""
    if not uri:
        return base
    return urllib.parse.urljoin(base, uri)


def pick_address(status: kubeapi.Json, name: str) -> kubeapi.Json | None:
    """`status.address`, or the `status.addresses[]` entry called `name` when one is asked."""
    if name:
        for entry in status.get("addresses") or []:
            if entry.get("name") == name:
                return dict(entry)
        return None
    address = status.get("address")
    return dict(address) if isinstance(address, dict) else None


class Resolver:
    def __init__(self, api: kubeapi.KubeApi, kinds: discovery.Discovery) -> None:
        self.api = api
        self.kinds = kinds

    async def resource_of(self, ref: Ref) -> kubeapi.Resource:
        if ref.is_service:
            return SERVICES
        try:
            return await self.kinds.resource_for(ref.api_version, ref.kind)
        except discovery.UnknownKind as exc:
            raise SinkError("NotFound", f"sink {ref.describe()}: {exc}") from exc

    async def resolve(self, destination: DestinationDict, default_namespace: str) -> Address:
        uri = destination.get("uri")
        ref = ref_of(destination, default_namespace)
        ca, audience = destination.get("CACerts"), destination.get("audience")
        if ref is None:
            if not uri:
                raise SinkError("SinkEmpty", "sink has neither ref nor uri")
            return Address(uri, ca, audience)
        resource = await self.resource_of(ref)
        obj = await self.api.get_or_none(resource, ref.namespace, ref.name)
        if obj is None:
            raise SinkError("NotFound", f"sink {ref.describe()} not found")
        if ref.is_service:
            return Address(join(service_url(ref.name, ref.namespace), uri), ca, audience)
        address = pick_address(obj.get("status") or {}, ref.address)
        url = str((address or {}).get("url") or "")
        if not url:
            what = f'address "{ref.address}"' if ref.address else "status.address.url"
            raise SinkError(
                "AddressNotSet", f"sink {ref.describe()} is not addressable yet: no {what}"
            )
        return Address(
            join(url, uri),
            ca or (address or {}).get("CACerts"),
            audience or (address or {}).get("audience"),
        )
