"""The ApiServerSource receive adapter: watchers -> ordered send queues -> sink.

Events of one object keep their order: each object (by uid) maps to one of `shards` send
queues with a single worker, while different objects are delivered in parallel. The queues are
bounded, so a slow or dead sink slows the watch consumers (the API server buffers) instead of
growing memory; nothing is dropped until its retries are exhausted, and then it is counted.

With a `checkpoint.Checkpoint`, each watch starts from the saved delivered position and
reports every change and every delivery to its `checkpoint.Progress` (see that module).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from prometheus_client import CollectorRegistry

from kevents import (
    cloudevent,
    delivery,
    errors,
    informer,
    kubeapi,
    metrics,
    probes,
    retries,
    runner,
    sender,
    sendqueue,
    settings,
)
from sources.apiserver import checkpoint, config, events
from sources.apiserver import metrics as source_metrics_module

logger = logging.getLogger(__name__)

RETRY = retries.RetryPolicy(
    retry=10, backoff_policy=retries.BackoffPolicy.EXPONENTIAL, backoff_delay=0.05, backoff_cap=5.0
)
"""Exponential backoff from 50 ms like Knative's adapter, but 11 attempts capped at 5 s apart:
about 20 s of patience, so a sink restarting (or a rolling dispatcher) loses nothing where
Knative's 5 attempts (under 1 s) would drop the event."""


async def discover(
    api: kubeapi.KubeApi, resources: Sequence[config.Resource]
) -> dict[config.Resource, tuple[str, bool]]:
    """Kind and namespaced-ness of each resource, from API discovery (not string rules)."""
    found: dict[config.Resource, tuple[str, bool]] = {}
    problems: list[str] = []
    for res in resources:
        path = f"/api/{res.version}" if not res.group else f"/apis/{res.group}/{res.version}"
        try:
            doc = await api.request("GET", path)
        except kubeapi.ApiError as err:
            problems.append(f"{config.VAR}: {res} is not served by the API server ({err})")
            continue
        entry = next((r for r in doc.get("resources", []) if r.get("name") == res.resource), None)
        if entry is None:
            problems.append(f"{config.VAR}: the API server has no resource {res}")
            continue
        found[res] = (str(entry["kind"]), bool(entry.get("namespaced")))
    if problems:
        raise errors.ConfigError(problems)
    return found


def collections(
    source: config.SourceConfig, kinds: dict[config.Resource, tuple[str, bool]]
) -> list[informer.Collection]:
    """One watch per resource and namespace; a single cluster-wide one for all namespaces."""
    out: list[informer.Collection] = []
    for res in source.resources:
        kind, namespaced = kinds[res]
        scopes: list[str | None] = (
            [None] if not namespaced or source.all_namespaces else list(source.namespaces)
        )
        out.extend(
            informer.Collection(res.group, res.version, res.resource, kind, ns, res.selector)
            for ns in scopes
        )
    return out


class Adapter:
    """Owns the queues and watchers; `components()` hands them to the runner in order."""

    def __init__(
        self,
        api: kubeapi.KubeApi,
        adapter_settings: settings.AdapterSettings,
        source: config.SourceConfig,
        kinds: dict[config.Resource, tuple[str, bool]],
        *,
        registry: CollectorRegistry,
        readiness: probes.Readiness,
        tracer_provider: trace.TracerProvider | None = None,
        shards: int = 4,
        queue_size: int = 1000,
        saves: checkpoint.Checkpoint | None = None,
        saved: Mapping[str, checkpoint.Saved] | None = None,
        source_metrics: source_metrics_module.SourceMetrics | None = None,
    ) -> None:
        """`shards` (4) parallel ordered streams keep a keep-alive pool busy; `queue_size`
        (1000) events in all wait at most, a few MB, before the watches are slowed down."""
        self._source = source
        self._readiness = readiness
        self.registry = registry
        self.event_source = api.host
        sender_metrics = metrics.SenderMetrics(
            registry,
            namespace=adapter_settings.namespace,
            name=adapter_settings.name,
            resource_group="apiserversources.sources.knative.dev",
        )
        self.sender = sender.Sender.from_settings(
            adapter_settings,
            policy=RETRY,
            sender_metrics=sender_metrics,
            tracer_provider=tracer_provider,
        )
        self._tracer = (tracer_provider or trace.NoOpTracerProvider()).get_tracer(
            "kevents.apiserver"
        )
        self._metrics = source_metrics or source_metrics_module.SourceMetrics(registry)
        self.queues = [
            sendqueue.SendQueue(
                self.sender,
                adapter_settings.sink,
                maxsize=max(1, queue_size // shards),
                workers=1,
                name=f"sink-{i}",
                sender_metrics=sender_metrics,
                on_result=self._count,
            )
            for i in range(shards)
        ]
        self.checkpoint = saves
        self._tokens: dict[str, tuple[checkpoint.Progress, object]] = {}
        informer_metrics = informer.InformerMetrics(registry)
        self.watchers = [
            self._informer(api, c, informer_metrics, (saved or {}).get(c.describe()))
            for c in collections(source, kinds)
        ]

    def _informer(
        self,
        api: kubeapi.KubeApi,
        collection: informer.Collection,
        informer_metrics: informer.InformerMetrics,
        saved: checkpoint.Saved | None,
    ) -> informer.Informer:
        # Only what tells add/update/delete apart (and what the owner filter reads) is kept
        # per watched object, as a tuple: memory does not grow with their size.
        keep = informer.Compact(("ownerReferences",) if self._source.owner is not None else ())

        if self.checkpoint is None:
            return informer.Informer(
                api, collection, self.emit, informer_metrics=informer_metrics, keep=keep
            )
        progress = checkpoint.Progress(collection, saved.known if saved else {})
        self.checkpoint.progress.append(progress)
        known = (
            {uid: (i[0], checkpoint.stub(collection, uid, i)) for uid, i in saved.known.items()}
            if saved
            else None
        )
        watcher = informer.Informer(
            api, collection, self._tracked(progress), informer_metrics=informer_metrics,
            resource_version=saved.resource_version if saved else "", known=known, keep=keep,
        )  # fmt: skip
        resumed = saved is not None

        def progressed(resource_version: str, listed: bool) -> None:
            nonlocal resumed
            if listed and resumed:
                # the saved position had left the watch window (410): only the difference
                self._metrics.unrecoverable.labels("expired").inc()
            resumed = resumed and not listed
            snapshot = checkpoint.identities(watcher.objects()) if listed else None
            progress.mark(resource_version, snapshot)

        watcher.on_progress = progressed
        return watcher

    def _tracked(
        self, progress: checkpoint.Progress
    ) -> Callable[[informer.Change, dict[str, Any]], Awaitable[None]]:
        async def handler(change: informer.Change, obj: dict[str, Any]) -> None:
            await self.emit(change, obj, progress=progress)

        return handler

    async def _count(self, event: cloudevent.CloudEvent, result: delivery.DeliveryResult) -> None:
        outcome = "delivered" if result.ok else "failed"
        self._metrics.sent.labels(event.get_type(), outcome).inc()
        tracked = self._tokens.pop(event.get_id(), None)
        if tracked is not None:
            tracked[0].finished(tracked[1])

    async def emit(
        self,
        change: informer.Change,
        obj: dict[str, Any],
        *,
        progress: checkpoint.Progress | None = None,
    ) -> None:
        owned = events.owned_by(obj, self._source.owner)
        token = progress.opened(change, obj, event=owned) if progress is not None else None
        if not owned:
            return
        event = events.make(change, obj, source=self.event_source, mode=self._source.mode)
        if progress is not None:
            self._tokens[event.get_id()] = (progress, token)
        self._metrics.changes.labels(event.get_type()).inc()
        uid = str(obj.get("metadata", {}).get("uid", ""))
        queue = self.queues[zlib.crc32(uid.encode()) % len(self.queues)]
        with self._tracer.start_as_current_span(
            f"{event.get_type()} emit", kind=trace.SpanKind.PRODUCER
        ):
            await queue.put(event)

    async def _ready_when_listed(self) -> None:
        await asyncio.gather(*(w.attempted.wait() for w in self.watchers))
        listed = sum(w.listed.is_set() for w in self.watchers)
        if listed == 0:
            self._readiness.set_not_ready("no watched resource could be listed (RBAC?)")
            await asyncio.gather(*(w.listed.wait() for w in self.watchers[:1]))
        self._readiness.set_ready()
        logger.info("Watching %d of %d target(s); sending to the sink.", listed, len(self.watchers))
        await asyncio.Event().wait()

    def components(self) -> list[runner.Service | runner.Component]:
        watchers = [
            runner.Service(name=f"watch {w.collection.describe()}", run=w.run)
            for w in self.watchers
        ]
        saves = [self.checkpoint] if self.checkpoint is not None else []
        return [
            self.sender,
            *saves,  # stopped after the queues drained: the final delivered position
            *self.queues,
            *watchers,
            runner.Service(name="readiness", run=self._ready_when_listed),
        ]
