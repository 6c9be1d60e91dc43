"""Resolve the objects a reconcile depends on and remember them for the tracker.

A reconcile makes one `Dependencies`, resolves destinations and reads referenced objects
through it, and finally hands `targets` to its tracker scope with `track_only` -- also when
a step failed, so the creation of a missing sink or channel wakes the object up.
"""

from __future__ import annotations

from typing import TypedDict

from controller.framework import discovery, sinks, tracking
from kevents import kubeapi


class DeliveryStatusDict(TypedDict, total=False):
    deadLetterSinkUri: str
    deadLetterSinkCACerts: str
    deadLetterSinkAudience: str


class DeliveryDict(TypedDict, total=False):
    """eventingduckv1.DeliverySpec as stored in the object."""

    deadLetterSink: sinks.DestinationDict
    retry: int
    backoffPolicy: str
    backoffDelay: str
    timeout: str
    retryAfterMax: str
    format: str


class Dependencies:
    def __init__(self, api: kubeapi.KubeApi, kinds: discovery.Discovery, namespace: str) -> None:
        self.api = api
        self.resolver = sinks.Resolver(api, kinds)
        self.namespace = namespace
        self.targets: list[tracking.Target] = []

    async def resolve(self, destination: sinks.DestinationDict) -> sinks.Address:
        """`sinks.Resolver.resolve`, tracking the ref (if any) first."""
        ref = sinks.ref_of(destination, self.namespace)
        if ref is not None:
            resource = await self.resolver.resource_of(ref)
            self.targets.append((resource, ref.namespace, ref.name))
        return await self.resolver.resolve(destination, self.namespace)

    async def get(self, resource: kubeapi.Resource, namespace: str, name: str) -> kubeapi.Json:
        """Read a referenced object (tracked); `kubeapi.NotFound` when it does not exist."""
        self.targets.append((resource, namespace, name))
        return await self.api.get(resource, namespace, name)

    async def dead_letter_sink(self, delivery: DeliveryDict | None) -> DeliveryStatusDict | None:
        """The resolved `deadLetterSink` as DeliveryStatus, None when none is configured."""
        destination = (delivery or {}).get("deadLetterSink")
        if not destination:
            return None
        address = await self.resolve(destination)
        return delivery_status(address)


def delivery_status(address: sinks.Address) -> DeliveryStatusDict:
    out: DeliveryStatusDict = {"deadLetterSinkUri": address.url}
    if address.ca_certs:
        out["deadLetterSinkCACerts"] = address.ca_certs
    if address.audience:
        out["deadLetterSinkAudience"] = address.audience
    return out
