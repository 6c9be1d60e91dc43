"""Binding and releasing subject objects, with the binding that owns each one recorded on it.

Every object a SinkBinding binds carries the annotation
`sinkbindings.sources.knative.dev/binding: <binding name>` next to the env. That annotation,
not a finalizer, is how unbinding works (reconcile-on-delete):

- a deleted binding's key is reconciled (its DELETED event, or any event of an object still
  annotated with it -- also after a controller restart, from the subject watches' initial
  list), and `release` takes the env and the annotation off every such object. So a
  namespace never waits on our finalizer, and a controller that was down when the binding
  went still cleans up when it is back;
- an object annotated by another live binding is left to it (the first binding wins; no
  two bindings fighting over one pod template and rolling it forever). When that binding
  goes, the release is a change of the object, which wakes the next binding selecting it.

Pure planning (`plan`) is separate from the API calls so the admission webhook makes the
same decision as the reconciler.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.apiserversource import adapter
from controller.sinkbinding import injection, subjects
from kevents import kubeapi

logger = logging.getLogger(__name__)

ANNOTATION = "sinkbindings.sources.knative.dev/binding"
EXCLUDE = "bindings.knative.dev/exclude"


def owner_of(obj: kubeapi.Json) -> str:
    """The binding recorded on the object, "" when none."""
    return str(((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION) or "")


def excluded(obj: kubeapi.Json) -> bool:
    """`bindings.knative.dev/exclude: "true"` on an object keeps every binding off it."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(EXCLUDE) == "true")


@dataclass(frozen=True, slots=True)
class Plan:
    lists: dict[str, Any] = field(default_factory=dict)
    """containers/initContainers to write (empty: the env is already right)."""
    owner: str | None = None
    """The annotation value to write; None removes it."""


def plan(
    obj: kubeapi.Json, path: Sequence[str], name: str, sink: injection.Sink | None
) -> Plan | None:
    """What binding `name` writes into `obj` (`sink` None: release it), None for nothing.

    Bind only an object owned by nobody or by `name`; release only one owned by `name`."""
    owner = owner_of(obj)
    if sink is None:
        if owner != name:
            return None
    elif (owner and owner != name) or excluded(obj):
        return None
    lists = injection.desired(obj, path, sink) or {}
    wanted = name if sink is not None else None
    if not lists and (owner or None) == wanted:
        return None
    return Plan(lists, wanted)


def merge_patch(path: Sequence[str], todo: Plan, resource_version: str) -> dict[str, Any]:
    body = injection.merge_patch(path if todo.lists else (), todo.lists, resource_version)
    body["metadata"]["annotations"] = {ANNOTATION: todo.owner}
    return body


def json_patch(obj: kubeapi.Json, path: Sequence[str], todo: Plan) -> list[dict[str, Any]]:
    """RFC 6902 operations for an admission response."""
    ops = injection.json_patch(path, todo.lists)
    if (obj.get("metadata") or {}).get("annotations") is None:
        ops.append({"op": "add", "path": "/metadata/annotations",
                    "value": {ANNOTATION: todo.owner}})  # fmt: skip
    else:
        escaped = ANNOTATION.replace("~", "~0").replace("/", "~1")
        ops.append({"op": "add", "path": f"/metadata/annotations/{escaped}", "value": todo.owner})
    return ops


@dataclass(frozen=True, slots=True)
class Outcome:
    selected: int
    held_by: dict[str, str]
    """object name -> the other binding that owns it."""


class Binder:
    def __init__(self, api: kubeapi.KubeApi) -> None:
        self.api = api

    async def bind(
        self, subject: subjects.Subject, name: str, sink: injection.Sink
    ) -> Outcome | None:
        """Bind every object the subject selects; None for Jobs and Pods (immutable: bound
        at admission only)."""
        kind = subject.spec
        if not kind.mutable:
            return None
        objects = await self._selected(subject)
        held: dict[str, str] = {}
        for obj in objects:
            owner = owner_of(obj)
            if owner and owner != name:
                held[obj["metadata"]["name"]] = owner
            await self._apply(kind, obj, plan(obj, kind.pod_spec, name, sink), subject.kind)
        return Outcome(len(objects), held)

    async def admitted_unbound(
        self, subject: subjects.Subject, name: str, sink: injection.Sink, since: str
    ) -> list[str]:
        """Names of the selected Jobs created at or after `since` (the binding's creation)
        that the webhook did not bind (outside the selection mode, or admitted while the
        webhook was down or before the sink resolved) and that have not completed: their
        pods run without K_SINK and cannot be changed any more."""
        unbound = []
        for obj in await self._selected(subject):
            meta = obj.get("metadata") or {}
            if str(meta.get("creationTimestamp") or "") < since or _complete(obj):
                continue
            if plan(obj, subject.spec.pod_spec, name, sink) is not None:
                unbound.append(str(meta.get("name")))
        return sorted(unbound)

    async def release(self, namespace: str, name: str) -> int:
        """Take binding `name`'s env and annotation off every object it owns; returns how
        many objects were released."""
        released = 0
        for kind in subjects.KINDS.values():
            if not kind.mutable:
                continue
            listed = await self.api.request("GET", kind.resource.path(namespace))
            for obj in listed.get("items") or []:
                todo = plan(obj, kind.pod_spec, name, None)
                released += await self._apply(kind, obj, todo, kind.resource.plural)
        return released

    async def _apply(
        self, kind: subjects.Kind, obj: kubeapi.Json, todo: Plan | None, what: str
    ) -> int:
        if todo is None:
            return 0
        om = obj["metadata"]
        body = merge_patch(kind.pod_spec, todo, om["resourceVersion"])
        await self.api.merge_patch(kind.resource, om["namespace"], om["name"], body)
        logger.info(
            "%s %s %s/%s.", "Bound" if todo.owner else "Released", what, om["namespace"],
            om["name"], extra={"namespace": om["namespace"], "object_name": om["name"]},
        )  # fmt: skip
        return 1

    async def _selected(self, subject: subjects.Subject) -> list[kubeapi.Json]:
        resource = subject.spec.resource
        if subject.name:
            obj = await self.api.get_or_none(resource, subject.namespace, subject.name)
            return [] if obj is None else [obj]
        raw: Any = dict(subject.selector or {})
        listed = await self.api.request(
            "GET", resource.path(subject.namespace),
            query=[("labelSelector", adapter.selector_string(raw))],
        )  # fmt: skip
        return [dict(item) for item in listed.get("items") or []]


def _complete(job: kubeapi.Json) -> bool:
    return any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )
