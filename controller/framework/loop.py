"""One controller: a kind's reconciler, its watches, its work queue and its workers
(a controller-runtime "controller", knative's `controller.Impl`).

Watches only ever enqueue `namespace/name` keys of the primary kind; workers read the object
fresh and recompute everything (level-based), so a missed, duplicated or reordered event
cannot leave a wrong state behind. A `Watch` maps each event to keys:

- `primary(resource)`: the kind itself (its keys are remembered for `enqueue_all`);
- `owned(resource, kind)`: children carrying a controller owner reference to the kind;
- `everything(resource, namespace)`: objects that concern every object of the kind (the
  shared dispatcher Deployment and every InMemoryChannel): any event re-enqueues all keys;
- `Watch(resource, keys_fn)`: anything else.

Referenced objects (sinks, channels) come through the shared tracker's `Scope`, and every
key is reconciled again after `resync` seconds as a safety net.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from controller.framework import metrics, reconciling, workqueue
from kevents import kubeapi, watching

logger = logging.getLogger(__name__)

KeysFn = Callable[[str, kubeapi.Json], Iterable[str]]
"""Event type and object -> keys of the primary kind to reconcile."""


@dataclass(frozen=True, slots=True)
class Watch:
    resource: kubeapi.Resource
    keys: KeysFn
    label_selector: str = ""
    field_selector: str = ""
    namespace: str | None = None
    """Watch only this namespace (e.g. the system namespace); None = the controller's scope."""
    primary: bool = field(default=False)
    all_keys: bool = field(default=False)
    """Any event enqueues every known key of the kind (`keys` is ignored)."""


def primary(resource: kubeapi.Resource) -> Watch:
    return Watch(resource, lambda kind, obj: (reconciling.key_of(obj),), primary=True)


def owned(resource: kubeapi.Resource, kind: str, label_selector: str = "") -> Watch:
    def keys(event: str, obj: kubeapi.Json) -> Iterable[str]:
        key = reconciling.owner_key(obj, kind)
        return () if key is None else (key,)

    return Watch(resource, keys, label_selector=label_selector)


def everything(
    resource: kubeapi.Resource, namespace: str, *, label_selector: str = "",
    field_selector: str = "",
) -> Watch:  # fmt: skip
    return Watch(
        resource, lambda kind, obj: (), label_selector=label_selector,
        field_selector=field_selector, namespace=namespace, all_keys=True,
    )  # fmt: skip


class Controller:
    def __init__(
        self,
        reconciler: reconciling.Reconciler,
        queue: workqueue.WorkQueue,
        watches: Sequence[Watch],
        api: kubeapi.KubeApi,
        observed: metrics.ControllerMetrics,
        *,
        workers: int = 4,
        resync: float = 600.0,
        namespace: str | None = None,
    ) -> None:
        """`namespace` limits the watches to one namespace (tests); None = cluster-wide."""
        self.reconciler = reconciler
        self.kind = reconciler.kind
        self.queue = queue
        self.metrics = observed
        self.workers = workers
        self.resync = resync
        self.known: set[str] = set()
        restarts = observed.watch_restarts
        self.watchers = [
            watching.Watcher(
                api, w.resource, self._handler(w),
                namespace=w.namespace if w.namespace is not None else namespace,
                label_selector=w.label_selector,
                field_selector=w.field_selector,
                on_restart=lambda r: restarts.labels(r).inc(),
            )
            for w in watches
        ]  # fmt: skip
        self.synced = asyncio.Event()
        self.name = f"{self.kind} controller"

    async def wait_started(self) -> None:
        await self.synced.wait()

    def enqueue_all(self) -> None:
        for key in self.known:
            self.queue.add(key)

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for watcher in self.watchers:
                    group.create_task(watcher.run(), name=f"{self.kind}: {watcher.name}")
                for watcher in self.watchers:
                    await watcher.wait_started()
                for i in range(self.workers):
                    group.create_task(self._work(), name=f"{self.kind} worker {i}")
                self.synced.set()
                logger.info("%s controller started with %d workers.", self.kind, self.workers)
        finally:
            self.queue.shutdown()

    def _handler(self, watch: Watch) -> watching.Handler:
        def handle(event: str, obj: kubeapi.Json) -> None:
            if watch.all_keys:
                self.enqueue_all()
                return
            for key in watch.keys(event, obj):
                if watch.primary:
                    if event == "DELETED":
                        self.known.discard(key)
                    else:
                        self.known.add(key)
                self.queue.add(key)

        return handle

    async def _work(self) -> None:
        kind = self.kind
        while True:
            self.metrics.queue_depth.labels(kind).set(len(self.queue))
            key = await self.queue.get()
            started = time.perf_counter()
            try:
                recheck = await self.reconciler.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self.queue.requeue_rate_limited(key)
                within = exc.retry_within if isinstance(exc, reconciling.ReconcileError) else None
                if within is not None and within < delay:
                    self.queue.add_after(key, within)  # polled, not watched: bounded wait
                    delay = within
                self.metrics.reconciles.labels(kind, "error").inc()
                expected = isinstance(exc, reconciling.ReconcileError | kubeapi.ApiError)
                logger.log(
                    logging.INFO if expected else logging.WARNING,
                    "Reconcile of %s %s failed (%s); retrying in %.2f s.", kind, key, exc, delay,
                    exc_info=not expected,
                )  # fmt: skip
            else:
                self.queue.forget(key)
                self.queue.add_after(key, min(self.resync, recheck or self.resync))
                self.metrics.reconciles.labels(kind, "success").inc()
            finally:
                self.metrics.reconcile_seconds.labels(kind).observe(time.perf_counter() - started)
                self.queue.done(key)
