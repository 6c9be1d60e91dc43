"""Wires one reconciler to its work queue, watches and workers (a controller-runtime
"controller"), gated on leader election.

Events only ever enqueue `namespace/name` keys; workers read the object fresh and
recompute everything (level-based), so a missed, duplicated or reordered event cannot
leave a wrong state behind. Sources are enqueued by their own watch, by the watch of their
adapter Deployments (via the owner reference), by the tracker (sinks), by config changes,
and by the periodic resync.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from controller import configstore, discovery, kubeapi, metrics, tracking, watching, workqueue
from controller.apiserversource import adapter, reconciler

logger = logging.getLogger(__name__)


class Reconciler(Protocol):
    kind: str

    async def reconcile(self, key: str) -> None: ...


def key_of(obj: kubeapi.Json) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def owner_key(obj: kubeapi.Json, kind: str) -> str | None:
    meta = obj.get("metadata", {})
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return f"{meta.get('namespace', '')}/{ref.get('name', '')}"
    return None


class ApiServerSourceController:
    """Everything needed to reconcile ApiServerSources; `run()` once leading."""

    def __init__(
        self,
        api: kubeapi.KubeApi,
        registry_metrics: metrics.ControllerMetrics,
        *,
        system_namespace: str,
        image: str,
        workers: int = 4,
        resync: float = 600.0,
        namespace: str | None = None,
    ) -> None:
        """`namespace` limits the watches to one namespace (tests); None = cluster-wide."""
        self.metrics = registry_metrics
        self.queue = workqueue.WorkQueue()
        self.workers = workers
        self.resync = resync
        self.known: set[str] = set()
        restarts = registry_metrics.watch_restarts
        self.tracker = tracking.Tracker(
            api, self.queue.add, on_watch_restart=lambda r: restarts.labels(r).inc()
        )
        self.config = configstore.ConfigStore(
            api, namespace=system_namespace, image=image, on_change=self._enqueue_all
        )
        self.reconciler = reconciler.Reconciler(
            api,
            discovery.Discovery(api),
            self.tracker,
            self.config.adapter_config,
            ce_source=api.host,
        )
        self.watchers = [
            watching.Watcher(
                api, reconciler.APISERVERSOURCES, self._on_source, namespace=namespace,
                on_restart=lambda r: restarts.labels(r).inc(),
            ),
            watching.Watcher(
                api, adapter.DEPLOYMENTS, self._on_deployment, namespace=namespace,
                label_selector=f"eventing.knative.dev/source={adapter.CONTROLLER_AGENT}",
                on_restart=lambda r: restarts.labels(r).inc(),
            ),
        ]  # fmt: skip
        self.synced = asyncio.Event()
        self.name = "apiserversource controller"

    async def wait_started(self) -> None:
        await self.synced.wait()

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.config.watcher.run(), name="watch config")
                await self.config.watcher.wait_started()
                group.create_task(self.tracker.run(), name="tracker")
                for watcher in self.watchers:
                    group.create_task(watcher.run(), name=watcher.name)
                for watcher in self.watchers:
                    await watcher.wait_started()
                for i in range(self.workers):
                    group.create_task(self._work(), name=f"{self.reconciler.kind} worker {i}")
                self.synced.set()
                logger.info("ApiServerSource controller started with %d workers.", self.workers)
        finally:
            self.queue.shutdown()

    def _enqueue_all(self) -> None:
        for key in self.known:
            self.queue.add(key)

    def _on_source(self, kind: str, obj: kubeapi.Json) -> None:
        key = key_of(obj)
        if kind == "DELETED":
            self.known.discard(key)
        else:
            self.known.add(key)
        self.queue.add(key)

    def _on_deployment(self, kind: str, obj: kubeapi.Json) -> None:
        key = owner_key(obj, self.reconciler.kind)
        if key is not None:
            self.queue.add(key)

    async def _work(self) -> None:
        kind = self.reconciler.kind
        while True:
            self.metrics.queue_depth.labels(kind).set(len(self.queue))
            key = await self.queue.get()
            started = time.perf_counter()
            try:
                await self.reconciler.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self.queue.requeue_rate_limited(key)
                self.metrics.reconciles.labels(kind, "error").inc()
                expected = isinstance(exc, reconciler.ReconcileError | kubeapi.ApiError)
                logger.log(
                    logging.INFO if expected else logging.WARNING,
                    "Reconcile of %s %s failed (%s); retrying in %.2f s.", kind, key, exc, delay,
                    exc_info=not expected,
                )  # fmt: skip
            else:
                self.queue.forget(key)
                self.queue.add_after(key, self.resync)
                self.metrics.reconciles.labels(kind, "success").inc()
            finally:
                self.metrics.reconcile_seconds.labels(kind).observe(time.perf_counter() - started)
                self.queue.done(key)
