"""A PingSource as the API server sends it, turned into the `Job` the adapter fires.

The spec is checked by `kevents.pingspec`, the rule set the controller's reconciler (and the
admission webhook) use too: a source the controller marks Ready is one the adapter fires.

Which sources fire, as Knative's mtping adapter decides: only those whose sink the
controller resolved (`status.sinkUri`) and that are Ready (`Ready` True; a status with no
conditions at all counts as ready, for a sink patched in without a controller). A source
that turns not-ready stops firing (Knative's adapter keeps its old schedule).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypedDict
from urllib.parse import urlsplit

from kevents import pingspec, schedules


class CeOverrides(TypedDict, total=False):
    extensions: dict[str, str]


class PingSourceSpec(TypedDict, total=False):
    schedule: str
    timezone: str
    contentType: str
    data: str
    dataBase64: str
    sink: dict[str, Any]
    ceOverrides: CeOverrides


class Condition(TypedDict, total=False):
    type: str
    status: str
    reason: str
    message: str


class PingSourceStatus(TypedDict, total=False):
    sinkUri: str
    sinkCACerts: str
    observedGeneration: int
    conditions: list[Condition]


class PingSource(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    spec: PingSourceSpec
    status: PingSourceStatus


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """One schedulable PingSource."""

    namespace: str
    name: str
    uid: str
    schedule: schedules.Schedule
    sink: str
    payload: pingspec.Payload
    extensions: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    created: float | None = None
    """`metadata.creationTimestamp` (epoch seconds): no catch-up tick from before it."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def source(self) -> str:
        """The CloudEvent `source`: Knative's `/apis/v1/namespaces/<ns>/pingsources/<name>`."""
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"


def ready(status: PingSourceStatus) -> bool:
    """Ready True, or no Ready condition at all (sink resolved outside a controller)."""
    conditions = status.get("conditions") or []
    ready_condition = next((c for c in conditions if c.get("type") == "Ready"), None)
    return ready_condition is None or ready_condition.get("status") == "True"


def resolved_sink(status: PingSourceStatus) -> str | None:
    """`status.sinkUri` when it is an absolute http(s) URL and the source is ready."""
    uri = status.get("sinkUri") or ""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname or not ready(status):
        return None
    return uri


def _created(meta: Mapping[str, Any]) -> float | None:
    stamp = meta.get("creationTimestamp")
    if not stamp:
        return None
    return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def job_of(
    source: PingSource,
    *,
    limits: pingspec.Limits = pingspec.DEFAULTS,
    now: datetime.datetime | None = None,
) -> Job | None:
    """The Job to schedule; None while the sink is unresolved; `pingspec.InvalidSpecError`
    when the spec breaks the shared rules."""
    meta = source.get("metadata") or {}
    spec = source.get("spec") or PingSourceSpec()
    checked = pingspec.check(spec, now=now, limits=limits)
    sink = resolved_sink(source.get("status") or PingSourceStatus())
    if sink is None:
        return None
    extensions = (spec.get("ceOverrides") or CeOverrides()).get("extensions") or {}
    return Job(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        schedule=checked.schedule,
        sink=sink,
        payload=checked.payload,
        extensions=MappingProxyType({str(k): str(v) for k, v in extensions.items()}),
        created=_created(meta),
    )
