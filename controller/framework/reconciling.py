"""What every reconciler shares: the `Reconciler` seam, `ReconcileError`, object keys.

A reconciler is one async function from a key (`namespace/name`) to the object's desired
state and status; `loop.Controller` calls it. Every kind's is a `lifecycle.GenericReconciler`
around the kind's own `reconcile`/`finalize`. A step that cannot complete raises
`ReconcileError` carrying the conditions reached so far: the generic reconciler writes
them, and the loop requeues the key with backoff.
"""

from __future__ import annotations

from typing import Any, Protocol

from controller.framework import conditions
from kevents import errors, kubeapi


class Reconciler(Protocol):
    kind: str
    """The kind reconciled (metrics label, log messages, owner reference kind)."""

    async def reconcile(self, key: str) -> float | None:
        """Reconcile the object of `key`; returns the seconds within which to look again
        at the latest (a dependency no watch reports), None: at the next resync."""
        ...


class ReconcileError(errors.KeventsError):
    """The object could not reach its desired state this time; retry with backoff.

    `conditions` is the status reached so far, written before the key is requeued (None:
    nothing to write, e.g. the object may not be this controller's). `retry_within` caps the
    backoff (seconds) when what is awaited is polled, not watched."""

    def __init__(
        self,
        message: str,
        conds: conditions.Conditions | None = None,
        retry_within: float | None = None,
    ) -> None:
        self.conditions = conds
        self.retry_within = retry_within
        self.event: tuple[str, str] | None = None
        """The Warning Event's (reason, message) for this failure; None: `InternalError`
        with the error's text (Knative's generated reconciler)."""
        super().__init__(message)


def key_of(obj: kubeapi.Json) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def split(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return namespace, name


def owner_key(obj: kubeapi.Json, kind: str) -> str | None:
    """The key of the object's controlling owner of `kind`, if any."""
    meta = obj.get("metadata", {})
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return f"{meta.get('namespace', '')}/{ref.get('name', '')}"
    return None


def controlled_by(obj: kubeapi.Json, uid: str) -> bool:
    refs: list[dict[str, Any]] = obj.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("uid") == uid and r.get("controller") for r in refs)


def owner_reference(owner: kubeapi.Json, api_version: str, kind: str) -> dict[str, Any]:
    """A controller owner reference (kmeta.NewControllerRef): children are garbage-collected
    with the owner and blocked from outliving it in foreground deletion."""
    meta = owner["metadata"]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
