"""The SinkBinding controller: bindings (primary), sinks through the tracker, and one watch per
mutable subject kind (Deployments, StatefulSets, DaemonSets, CronJobs) plus Jobs (bound only
at admission: watched so a Job admitted unbound is reported on its binding).

A subject event wakes exactly the bindings whose parsed subject (the index the reconciler
keeps) selects the object, plus the binding recorded on it (`binder.ANNOTATION`): a
Deployment created after its binding, or one whose env was edited away, is bound again
within one reconcile, and one still owned by a binding deleted while the controller was
down is released once the watch lists it.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller import context
from controller.framework import lifecycle, loop
from controller.sinkbinding import binder, reconciler, subjects
from kevents import kubeapi


def subject_keys(index: dict[str, subjects.Subject], kind: subjects.Kind) -> loop.KeysFn:
    def keys(event: str, obj: kubeapi.Json) -> Iterable[str]:
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        out = {
            key for key, subject in list(index.items())
            if subject.spec is kind and subject.namespace == namespace and subject.selects(obj)
        }  # fmt: skip
        owner = binder.owner_of(obj)
        if owner:
            out.add(f"{namespace}/{owner}")  # also when that binding is gone: release
        return sorted(out)

    return keys


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(reconciler.KIND)
    index: dict[str, subjects.Subject] = {}
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx, index), scope)
    watches = [loop.primary(reconciler.SINKBINDINGS)]
    for kind in subjects.KINDS.values():
        if kind.mutable or kind.resource.plural == "jobs":  # Jobs: admitted unbound, reported
            watches.append(loop.Watch(kind.resource, subject_keys(index, kind)))
    opts = ctx.options
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
