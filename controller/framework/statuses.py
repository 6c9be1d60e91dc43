"""Writing `status` back: a merge patch of exactly what changed, guarded by resourceVersion.

Reconcilers compute the whole status they own; `patch` turns old -> new into a merge patch
that leaves alone the fields someone else owns (`annotations`, `auth`, and for an
InMemoryChannel the dispatcher's `subscribers`). Nothing changed -> no request at all, so a
resync of a healthy object costs one GET.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from controller.framework import conditions
from kevents import kubeapi

logger = logging.getLogger(__name__)

KEEP = frozenset({"annotations", "auth"})


def patch(
    old: kubeapi.Json, new: kubeapi.Json, keep: Collection[str] = KEEP
) -> kubeapi.Json | None:
    """A merge patch turning `old` status into `new`, or None when nothing changes."""
    out: kubeapi.Json = {k: v for k, v in new.items() if old.get(k) != v}
    for key in old:
        if key not in new and key not in keep:
            out[key] = None
    return out or None


async def write(
    api: kubeapi.KubeApi,
    resource: kubeapi.Resource,
    kind: str,
    obj: kubeapi.Json,
    status: kubeapi.Json,
    conds: conditions.Conditions,
    keep: Collection[str] = KEEP,
) -> kubeapi.Json | None:
    """Patch `obj`'s status to `status` + `conds`; returns the object as written, None when
    nothing changed (and nothing was sent).

    The patch carries the object's resourceVersion: if it changed since it was read, the
    apiserver answers 409 and the key is reconciled again from a fresh read."""
    old = dict(obj.get("status") or {})
    new = {**status, "conditions": conds.to_list()}
    for key in keep:
        if key in old and key not in new:
            new[key] = old[key]
    diff = patch(old, new, keep)
    if diff is None:
        return None
    meta = obj["metadata"]
    written = await api.merge_patch(
        resource,
        meta["namespace"],
        meta["name"],
        {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": diff},
        subresource="status",
    )
    ready = conds.get(conditions.READY)
    if ready is not None and old_ready(old) != ready.status:
        logger.info(
            "%s %s/%s is Ready=%s%s.", kind, meta["namespace"], meta["name"], ready.status,
            f" ({ready.reason}: {ready.message})" if ready.reason else "",
            extra={"namespace": meta["namespace"], "object_name": meta["name"], "kind": kind},
        )  # fmt: skip
    return written


def old_ready(status: kubeapi.Json) -> str:
    for cond in status.get("conditions") or []:
        if cond.get("type") == conditions.READY:
            return str(cond.get("status", ""))
    return ""
