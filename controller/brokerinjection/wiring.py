"""The Broker injection controller: Namespaces (primary) and Brokers named `default` (a
deleted one wakes its namespace up, which recreates it while the label stays).

With `Options.namespace` (tests) only that namespace is watched."""

from __future__ import annotations

from collections.abc import Iterable

from controller import context
from controller.broker import defaults
from controller.brokerinjection import injection, reconciler
from controller.framework import lifecycle, loop
from kevents import kubeapi


def _namespace_key(event: str, obj: kubeapi.Json) -> Iterable[str]:
    return (f"/{obj.get('metadata', {}).get('namespace', '')}",)


def build(ctx: context.Context) -> loop.Controller:
    queue = ctx.queue_and_scope(reconciler.KIND)[0]
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx))
    opts = ctx.options
    only = f"metadata.name={opts.namespace}" if opts.namespace else ""
    primary = loop.primary(injection.NAMESPACES)
    watches = [
        loop.Watch(primary.resource, primary.keys, field_selector=only, primary=True),
        loop.Watch(
            defaults.BROKERS, _namespace_key,
            field_selector=f"metadata.name={injection.DEFAULT_BROKER}",
        ),
    ]  # fmt: skip
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
