"""The caching mode of the one watch loop (`kevents.watching`): an informer of one collection
(a resource in one namespace, or all), listed then watched forever, without gaps or doubles.
Used by the dispatcher and the adapters.

`Informer` is a `watching.Watcher`, so its 410 / 403 / watchdog / backoff behaviour is the
loop's, written and tested once. On top it keeps the last seen state of every object
(uid -> resourceVersion and object), so:

- a watch that ends, times out or goes silent (no line, not even a bookmark, for
  `inactivity` seconds: the watchdog of knative/eventing#8675) resumes from the last
  resourceVersion and loses nothing;
- a MODIFIED whose resourceVersion did not advance (a resync echo, a replay) is dropped,
  never re-sent (counted in `kevents_watch_duplicates_suppressed`);
- after 410 Gone (history compacted) it lists again and emits only the difference against
  what it had seen: `add` for new objects, `update` for changed ones, `delete` (with the last
  known state) for objects that vanished meanwhile; a relist that fails is retried with the
  loop's backoff, the known state kept until one succeeds;
- objects that exist at start are handed over as `add` when `initial=True` (a cache, e.g. the
  dispatcher's channels), or only recorded (ApiServerSource: Knative emits only changes);
- started from a checkpoint (`resource_version` and the `known` uid -> (resourceVersion,
  object) state of that moment), it resumes the watch there without listing, and a 410
  relist emits the difference against that state: a restart loses no change.

What it remembers of each object is `keep(obj)`, the whole object by default (a cache); an
adapter that only needs to tell add/update/delete apart keeps the identity (`identity()`, or
`Compact()`: the same identity as one small tuple with the resourceVersion, ~0.3 KB per
object instead of ~1.2 KB for the dicts, with the namespace interned and kind/apiVersion
taken from the collection), so its
memory does not grow with the size of the watched objects; a delete found by a relist then
carries that identity as the object's last known state.

A 403 on list is logged once, naming the verb and resource; the informer retries slowly, so
granting the permission later starts the flow without a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from kevents import kubeapi, watching

logger = logging.getLogger(__name__)


class Change(enum.StrEnum):
    ADD = "add"
    UPDATE = "update"
    DELETE = "delete"


Handler = Callable[[Change, dict[str, Any]], Awaitable[None]]
"""Called once per change, in order, with the object (its last known state for a delete)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Collection:
    """What one informer covers: group/version/plural, kind, namespace (None = all), selectors."""

    group: str
    version: str
    resource: str
    kind: str
    namespace: str | None = None
    label_selector: str = ""
    field_selector: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def kube_resource(self) -> kubeapi.Resource:
        return kubeapi.Resource(self.group, self.version, self.resource)

    def path(self) -> str:
        return self.kube_resource.path(self.namespace)

    def describe(self) -> str:
        return watching.describe(self.kube_resource, self.namespace)


class InformerMetrics:
    """Watch health, shared by every informer of a process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.watches_active = Gauge(
            "kevents_watches_active",
            "Watches currently running (one per collection)",
            registry=registry,
        )
        self.restarts = Counter(
            "kevents_watch_restarts",
            "Watch restarts by reason (ended|expired|inactive|forbidden|error)",
            ["reason"],
            registry=registry,
        )
        self.duplicates_suppressed = Counter(
            "kevents_watch_duplicates_suppressed",
            "Watch events dropped because the object's resourceVersion had not advanced",
            registry=registry,
        )


def _newer(rv: str, than: str) -> bool:
    """True when `rv` is a later version than `than`.

    resourceVersions are opaque, but etcd-backed servers use increasing integers; comparing them
    drops resync echoes (same version) and replays of older history after a resume.
    """
    if rv.isdigit() and than.isdigit():
        return int(rv) > int(than)
    return rv != than


@dataclasses.dataclass(slots=True)
class _Seen:
    resource_version: str
    obj: dict[str, Any]
    """What `keep` returned."""


_Record = _Seen | tuple[Any, ...]
"""What is remembered of one object: a `_Seen`, or with `Compact` its `record()` tuple."""


def _version(record: _Record) -> str:
    return record.resource_version if isinstance(record, _Seen) else str(record[0])


def identity(obj: dict[str, Any], *extra: str) -> dict[str, Any]:
    """An object's kind, apiVersion and metadata name/namespace/uid/resourceVersion (plus the
    metadata fields named in `extra`, e.g. ownerReferences for an owner filter)."""
    meta = obj.get("metadata") or {}
    kept = {
        key: meta[key]
        for key in ("name", "namespace", "uid", "resourceVersion", *extra)
        if key in meta
    }
    return {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"), "metadata": kept}


@dataclasses.dataclass(frozen=True, slots=True)
class Compact:
    """A `keep` remembering `identity(obj, *extra)` as a tuple (name, namespace, *extra values):
    the uid is the informer's key, and kind/apiVersion are the collection's. The informer
    keeps `record()`, that tuple with the resourceVersion in front, as the one record per
    object (a tuple beside it would cost ~50 bytes more each). `restore` gives back the
    `identity()` dict."""

    extra: tuple[str, ...] = ()

    def __call__(self, obj: dict[str, Any]) -> tuple[Any, ...]:
        return self.record("", obj)[1:]

    def record(self, resource_version: str, obj: dict[str, Any]) -> tuple[Any, ...]:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace")
        if isinstance(namespace, str):
            namespace = sys.intern(namespace)  # a few namespaces shared by every object
        extra = (meta.get(key) for key in self.extra)
        return (resource_version, meta.get("name"), namespace, *extra)

    def restore(
        self, kept: tuple[Any, ...], uid: str, resource_version: str, collection: Collection
    ) -> dict[str, Any]:
        name, namespace, *values = kept
        meta: dict[str, Any] = {}
        if name is not None:
            meta["name"] = name
        if namespace is not None:
            meta["namespace"] = namespace
        meta["uid"] = uid
        meta["resourceVersion"] = resource_version
        meta.update((k, v) for k, v in zip(self.extra, values, strict=True) if v is not None)
        return {"kind": collection.kind, "apiVersion": collection.api_version, "metadata": meta}


def _whole(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _never(kind: str, obj: kubeapi.Json) -> None:
    raise AssertionError("an Informer hands changes to its own handler")


class Informer(watching.Watcher):
    def __init__(
        self,
        api: kubeapi.KubeApi,
        collection: Collection,
        handler: Handler,
        *,
        informer_metrics: InformerMetrics,
        initial: bool = False,
        watch_timeout: int = 300,
        inactivity: float = 90.0,
        page_size: int = 500,
        forbidden_retry: float = 30.0,
        max_backoff: float = 30.0,
        on_progress: Callable[[str, bool], None] | None = None,
        resource_version: str = "",
        known: Mapping[str, tuple[str, dict[str, Any]]] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        keep: Callable[[dict[str, Any]], dict[str, Any]] | Compact = _whole,
    ) -> None:
        """`watch_timeout` (300 s) asks the server to end each watch so connections renew;
        `inactivity` (90 s) is longer than the server's 60 s bookmark interval, so only a dead
        connection trips it; `forbidden_retry` (30 s) re-checks a missing permission."""
        restarts = informer_metrics.restarts
        super().__init__(
            api,
            collection.kube_resource,
            _never,
            namespace=collection.namespace,
            label_selector=collection.label_selector,
            field_selector=collection.field_selector,
            server_timeout=watch_timeout,
            inactivity=inactivity,
            page_size=page_size,
            max_backoff=max_backoff,
            forbidden_retry=forbidden_retry,
            on_restart=lambda reason: restarts.labels(reason).inc(),
            on_progress=on_progress,
            resource_version=resource_version if known is not None else "",
            sleep=sleep,
        )
        self.collection = collection
        self._changes = handler
        self._metrics = informer_metrics
        self._initial = initial
        self._keep = keep
        self._seen = {uid: self._record(rv, obj) for uid, (rv, obj) in (known or {}).items()}
        self._listed_once = known is not None
        self.listed = self.synced
        """Set after the first successful list."""

    def objects(self) -> list[dict[str, Any]]:
        """The last known state of every object in the collection."""
        return [self._state(uid, seen) for uid, seen in self._seen.items()]

    def _record(self, resource_version: str, obj: dict[str, Any]) -> _Record:
        if isinstance(self._keep, Compact):
            return self._keep.record(resource_version, obj)
        return _Seen(resource_version, self._keep(obj))

    def _state(self, uid: str, seen: _Record) -> dict[str, Any]:
        if isinstance(seen, _Seen):
            return seen.obj
        assert isinstance(self._keep, Compact)
        return self._keep.restore(seen[1:], uid, str(seen[0]), self.collection)

    async def run(self) -> None:
        self._metrics.watches_active.inc()
        try:
            await super().run()
        finally:
            self._metrics.watches_active.dec()

    def _with_type(self, obj: dict[str, Any]) -> dict[str, Any]:
        # List items carry no kind/apiVersion; events and subjects need them.
        obj.setdefault("kind", self.collection.kind)
        obj.setdefault("apiVersion", self.collection.api_version)
        return obj

    async def _listed(self, listed: list[kubeapi.Json]) -> None:
        """Reconcile the known state with a list (emitting the differences after the first)."""
        items = {str(o["metadata"]["uid"]): self._with_type(o) for o in listed}
        if not self._listed_once and self._initial:
            for obj in items.values():
                await self._changes(Change.ADD, obj)
        if self._listed_once:
            for uid, obj in items.items():
                seen = self._seen.get(uid)
                if seen is None:
                    await self._changes(Change.ADD, obj)
                elif _version(seen) != obj["metadata"].get("resourceVersion"):
                    await self._changes(Change.UPDATE, obj)
            for uid in [uid for uid in self._seen if uid not in items]:
                await self._changes(Change.DELETE, self._state(uid, self._seen[uid]))
        self._seen = {
            uid: self._record(str(obj["metadata"].get("resourceVersion", "")), obj)
            for uid, obj in items.items()
        }
        self._listed_once = True

    async def _event(self, kind: str, obj: kubeapi.Json) -> None:
        """Apply one watch event to the known state and emit what changed."""
        meta = obj.get("metadata") or {}
        rv = str(meta.get("resourceVersion", ""))
        obj = self._with_type(obj)
        uid = str(meta.get("uid", ""))
        seen = self._seen.get(uid)
        if kind == "DELETED":
            self._seen.pop(uid, None)
            await self._changes(Change.DELETE, obj)
        elif seen is not None and not _newer(rv, _version(seen)):
            self._metrics.duplicates_suppressed.inc()
        else:
            self._seen[uid] = self._record(rv, obj)
            await self._changes(Change.ADD if seen is None else Change.UPDATE, obj)
