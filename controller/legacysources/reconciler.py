"""Mirroring reconcilers of the old `sources.eventing.knative.dev/v1alpha1` kinds.

Each old object owns (controller owner reference) one `sources.knative.dev` object of the
same name (a KubernetesEventSource's is `<name>-k8sevents`, so it never meets an old
ApiServerSource's), which today's controller reconciles:

1. (ContainerSource only) resolve the sink, tracked, so the `--sink=` argument carries its
   URI; a sink that does not resolve is Ready False with the resolver's reason.
2. Server-side apply the new object from `mapping` (labelled `MIRROR_LABEL`); one of that
   name the old object does not own is left alone: Ready False `NotOwned`.
3. Copy the new object's status back: its conditions verbatim (Ready and its dependents),
   `sinkUri`, `ceAttributes` and the kind's own fields; Ready Unknown `Mirroring` until the
   new object has been reconciled once. The owned watch wakes the old object up on every
   status change of the new one.

Deletion is garbage collection: deleting the old object deletes the new one, whose own
children (adapter Deployment, SinkBinding) follow. `GcpPubSubSource` has no counterpart:
it is Ready False `GoogleCloudUnavailable`.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from typing import ClassVar, cast

from controller.framework import children, conditions, lifecycle, reconciling, sinks
from controller.legacysources import mapping
from kevents import kubeapi

logger = logging.getLogger(__name__)

GROUP = "sources.eventing.knative.dev"
API_VERSION = f"{GROUP}/v1alpha1"
MIRROR_LABEL = "sources.eventing.knative.dev/mirrored-from"
"""On each new object: the old kind's `<plural>.sources.eventing.knative.dev`."""
CONDITION_SET = conditions.ConditionSet(())
"""No dependents of our own: the conditions are the new object's, copied."""
COPIED = ("sinkUri", "sinkCACerts", "sinkAudience", "ceAttributes")

V1_APISERVERSOURCES = kubeapi.Resource("sources.knative.dev", "v1", "apiserversources")
V1_CONTAINERSOURCES = kubeapi.Resource("sources.knative.dev", "v1", "containersources")
V1ALPHA1_GITHUBSOURCES = kubeapi.Resource("sources.knative.dev", "v1alpha1", "githubsources")

SpecBuilder = Callable[[kubeapi.Json, str], kubeapi.Json]
"""The old object and its resolved sink URI ("" when not resolved here) -> the new spec."""


def legacy(plural: str) -> kubeapi.Resource:
    return kubeapi.Resource(GROUP, "v1alpha1", plural)


def copied_conditions(
    conds: conditions.Conditions, child: kubeapi.Json, what: str
) -> conditions.Conditions:
    """The new object's conditions as ours; Ready Unknown `Mirroring` while it has none."""
    raw = (child.get("status") or {}).get("conditions") or []
    items = tuple(conditions.Condition.from_dict(c) for c in raw if c.get("type"))
    if not any(c.type == conditions.READY for c in items):
        return conds.mark_unknown(
            conditions.READY, "Mirroring", f"Waiting for {what} to be reconciled."
        )
    dependents = tuple(c.type for c in items if c.type != conditions.READY)
    return conditions.Conditions(conditions.ConditionSet(dependents), items, conds.clock)


class Mirror(lifecycle.Kind):
    """One old kind mirrored into `target`; subclasses name the kinds and the mapping."""

    condition_set = CONDITION_SET
    old_kind: ClassVar[str]
    target: ClassVar[kubeapi.Resource]
    target_kind: ClassVar[str]
    resolves_sink: ClassVar[bool] = False
    extra_status: ClassVar[tuple[str, ...]] = ()
    suffix: ClassVar[str] = ""
    """Added to the old object's name for the new one's: two old kinds that mirror into the
    same new kind (ApiServerSource) may share a name."""

    def __init__(self, api: kubeapi.KubeApi) -> None:
        self.api = api

    @abc.abstractmethod
    def build(self, obj: kubeapi.Json, sink_uri: str) -> kubeapi.Json:
        """The new object's spec from the old object and its resolved sink URI."""

    async def reconcile(self, obj: kubeapi.Json, state: lifecycle.State) -> None:
        meta = obj["metadata"]
        sink_uri = ""
        if self.resolves_sink:
            destination = mapping.container_sink(obj.get("spec") or {})
            try:
                address = await state.deps.resolve(cast(sinks.DestinationDict, destination))
                sink_uri = address.url
            except sinks.SinkError as exc:
                state.mark_false(conditions.READY, exc.reason, exc.message)
                raise state.fail(exc.message) from exc
        desired: kubeapi.Json = {
            "apiVersion": self.target.api_version,
            "kind": self.target_kind,
            "metadata": {
                "name": meta["name"] + self.suffix,
                "namespace": meta["namespace"],
                "labels": {MIRROR_LABEL: f"{self.resource.plural}.{GROUP}"},
                "ownerReferences": [reconciling.owner_reference(obj, API_VERSION, self.old_kind)],
            },
            "spec": self.build(obj, sink_uri),
        }
        child = await children.apply(self.api, self.target, obj, desired, conditions.READY, state)
        what = f"{self.target_kind} {self.target.group}/{desired['metadata']['name']}"
        state.conditions = copied_conditions(state.conditions, child, what)
        cstatus = child.get("status") or {}
        for field in (*COPIED, *self.extra_status):
            if cstatus.get(field) not in (None, "", []):
                state.status[field] = cstatus[field]


class ApiServerSource(Mirror):
    kind = f"ApiServerSource.{GROUP}"
    old_kind = "ApiServerSource"
    resource = legacy("apiserversources")
    target = V1_APISERVERSOURCES
    target_kind = "ApiServerSource"

    def build(self, obj: kubeapi.Json, sink_uri: str) -> kubeapi.Json:
        return mapping.apiserversource(obj.get("spec") or {})


class KubernetesEventSource(Mirror):
    kind = f"KubernetesEventSource.{GROUP}"
    old_kind = "KubernetesEventSource"
    resource = legacy("kuberneteseventsources")
    target = V1_APISERVERSOURCES
    target_kind = "ApiServerSource"
    suffix = "-k8sevents"

    def build(self, obj: kubeapi.Json, sink_uri: str) -> kubeapi.Json:
        return mapping.kuberneteseventsource(obj.get("spec") or {}, obj["metadata"]["namespace"])


class ContainerSource(Mirror):
    kind = f"ContainerSource.{GROUP}"
    old_kind = "ContainerSource"
    resource = legacy("containersources")
    target = V1_CONTAINERSOURCES
    target_kind = "ContainerSource"
    resolves_sink = True

    def build(self, obj: kubeapi.Json, sink_uri: str) -> kubeapi.Json:
        return mapping.containersource(obj.get("spec") or {}, sink_uri)


class GitHubSource(Mirror):
    kind = f"GitHubSource.{GROUP}"
    old_kind = "GitHubSource"
    resource = legacy("githubsources")
    target = V1ALPHA1_GITHUBSOURCES
    target_kind = "GitHubSource"
    extra_status = ("webhookIDKey",)

    def build(self, obj: kubeapi.Json, sink_uri: str) -> kubeapi.Json:
        return mapping.githubsource(obj.get("spec") or {})


GCP_REASON = "GoogleCloudUnavailable"
GCP_MESSAGE = (
    "Google Cloud Pub/Sub is out of reach here: kevents runs no Pub/Sub adapter and no "
    "Google Cloud credentials are used. Send the events through a KafkaSource, a "
    "PingSource or an ApiServerSource instead."
)


class GcpPubSubSource(lifecycle.Kind):
    """Accepted so old YAML applies, and said plainly to be unsupported."""

    kind = f"GcpPubSubSource.{GROUP}"
    resource = legacy("gcppubsubsources")
    condition_set = CONDITION_SET

    async def reconcile(self, obj: kubeapi.Json, state: lifecycle.State) -> None:
        state.mark_false(conditions.READY, GCP_REASON, GCP_MESSAGE)


MIRRORS: tuple[type[Mirror], ...] = (
    ApiServerSource,
    KubernetesEventSource,
    ContainerSource,
    GitHubSource,
)
