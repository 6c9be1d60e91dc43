"""Kubernetes Events (`v1/Event`), recorded as client-go's `tools/record` broadcaster does.

The one event recorder of kevents: the controller's reconcilers record Events on their
objects, the node agent (`hack/agent`) records the kubelet's Events on pods. Both write
what `kubectl describe` and an ApiServerSource watching `v1/Event` read, in the shape the
upstream components write it:

- the core `v1` API, as the kubelet (`record.NewBroadcaster` + `v1core.EventSinkImpl`) and
  Knative's reconcilers (`controller.GetEventRecorder`) do: `source.component`/`source.host`
  plus `reportingComponent`/`reportingInstance`, `firstTimestamp`, `lastTimestamp`, `count`.
  The apiserver shows the same object through `events.k8s.io/v1` (`reportingController`,
  `regarding`, `deprecatedSource`, `deprecatedCount`); it refuses `deprecatedSource` on an
  `events.k8s.io/v1` create, so that API cannot say `source.component: kubelet`.
- correlation (client-go `events_cache.go`), so a crash loop or a failing object does not
  flood the apiserver:
    * the same event again (source, object, fieldPath, type, reason, message) is one Event
      whose `count` and `lastTimestamp` a merge patch advances ("x5 over 3m" in describe);
    * more than `SIMILAR_LIMIT` different messages with the same source, object, type and
      reason within `SIMILAR_WINDOW` seconds are combined into one Event whose message starts
      with "(combined from similar events): ";
    * a token bucket per (source, object, type, reason, message): `SPAM_BURST` Events, then
      one every `SPAM_REFILL` seconds; the rest are dropped (counted).

`Recorder.event()` never blocks and never raises: it queues (bounded, `QUEUE_SIZE`, the
broadcaster's `maxQueuedEvents`) and `Recorder.run()` writes in the background; a full queue
or a failed write loses the Event (counted and logged), as in client-go. Events are
best-effort by design: the reconcile or the container never waits for them.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar

from kevents import kubeapi, metrics

logger = logging.getLogger(__name__)

EVENTS = kubeapi.Resource("", "v1", "events")

NORMAL = "Normal"
WARNING = "Warning"

QUEUE_SIZE = 1000
"""Events waiting to be written (client-go's maxQueuedEvents); more are dropped."""
CACHE_SIZE = 4096
"""Entries of each correlation cache (client-go's maxLruCacheEntries), least recent evicted."""
SIMILAR_LIMIT = 10
"""Different messages for one (source, object, type, reason) before they are combined
(client-go's defaultAggregateMaxEvents)."""
SIMILAR_WINDOW = 600.0
"""Seconds over which similar messages count (defaultAggregateIntervalInSeconds)."""
SPAM_BURST = 25
"""Events one (source, object, type, reason, message) may write at once (defaultSpamBurst)."""
SPAM_REFILL = 300.0
"""Seconds per token after the burst (defaultSpamQPS = 1/300)."""
COMBINED_PREFIX = "(combined from similar events): "
MESSAGE_LIMIT = 1024
"""Characters of a message kept (the apiserver caps `note` at 1 kB in events.k8s.io/v1)."""
WRITE_ATTEMPTS = 3
"""Tries per Event when the apiserver is unreachable or answers 5xx (1 s, then 2 s apart)."""


class ObjectReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    namespace: str
    name: str
    uid: str
    resourceVersion: str
    fieldPath: str


def reference(obj: Mapping[str, Any], field_path: str = "") -> ObjectReference:
    """The `involvedObject` of an Event about `obj` (client-go's `ref.GetReference`)."""
    meta = obj.get("metadata") or {}
    ref = ObjectReference(
        apiVersion=str(obj.get("apiVersion", "")),
        kind=str(obj.get("kind", "")),
        name=str(meta.get("name", "")),
    )
    for key, value in (
        ("namespace", meta.get("namespace")),
        ("uid", meta.get("uid")),
        ("resourceVersion", meta.get("resourceVersion")),
        ("fieldPath", field_path),
    ):
        if value:
            ref[key] = str(value)  # type: ignore[literal-required]
    return ref


@dataclass(frozen=True, slots=True)
class Source:
    """Who records: `component` (kubelet, pingsource-controller), `host` (the node)."""

    component: str
    host: str = ""


@dataclass(frozen=True, slots=True)
class _Pending:
    source: Source
    ref: ObjectReference
    type: str
    reason: str
    message: str


@dataclass(slots=True)
class _Written:
    name: str
    namespace: str
    count: int
    first: str


class _Bucket:
    __slots__ = ("tokens", "at")

    def __init__(self, now: float) -> None:
        self.tokens = float(SPAM_BURST)
        self.at = now

    def take(self, now: float) -> bool:
        self.tokens = min(float(SPAM_BURST), self.tokens + (now - self.at) / SPAM_REFILL)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A bounded mapping; the least recently used entry goes first."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.items: collections.OrderedDict[K, V] = collections.OrderedDict()

    def get(self, key: K) -> V | None:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


def _object_key(source: Source, ref: ObjectReference) -> tuple[str, ...]:
    return (
        source.component, source.host, ref.get("kind", ""), ref.get("namespace", ""),
        ref.get("name", ""), ref.get("uid", ""), ref.get("apiVersion", ""),
    )  # fmt: skip


def timestamp(seconds: float) -> str:
    """RFC 3339 at second precision (metav1.Time)."""
    moment = datetime.datetime.fromtimestamp(int(seconds), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Decision:
    """How to write one Event: `key` names the Event it adds to (a repeat of the same key
    patches that Event's count), `message` is what it says (combined or not)."""

    key: tuple[str, ...]
    message: str


class Correlator:
    """client-go's EventCorrelator without the I/O: aggregation of similar messages and the
    spam filter (pure, on the clock value passed in), and the Events written, by key."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._similar: _Lru[tuple[str, ...], tuple[float, set[str]]] = _Lru(size)
        self._buckets: _Lru[tuple[str, ...], _Bucket] = _Lru(size)
        self._written: _Lru[tuple[str, ...], _Written] = _Lru(size)

    def correlate(
        self, source: Source, ref: ObjectReference, type_: str, reason: str, message: str,
        now: float,
    ) -> Decision | None:  # fmt: skip
        """The Event to write for this occurrence at `now`; None: dropped by the spam filter."""
        obj_key = _object_key(source, ref)
        key = (*obj_key, ref.get("fieldPath", ""), type_, reason, message)
        similar_key = (*obj_key, type_, reason)
        seen = self._similar.get(similar_key)
        messages = seen[1] if seen is not None and now - seen[0] <= SIMILAR_WINDOW else set()
        messages.add(message)
        self._similar.put(similar_key, (now, messages))
        if len(messages) >= SIMILAR_LIMIT:
            message = (COMBINED_PREFIX + message)[:MESSAGE_LIMIT]
            key = similar_key
        spam_key = (*obj_key, type_, reason, message)
        bucket = self._buckets.get(spam_key)
        if bucket is None:
            bucket = _Bucket(now)
            self._buckets.put(spam_key, bucket)
        if not bucket.take(now):
            return None
        return Decision(key, message)

    def written(self, key: tuple[str, ...]) -> _Written | None:
        return self._written.get(key)

    def remember(self, key: tuple[str, ...], written: _Written) -> None:
        self._written.put(key, written)


class Recorder:
    """Queues Events and writes them with correlation; `run()` until cancelled."""

    def __init__(
        self,
        api: kubeapi.KubeApi,
        *,
        event_metrics: metrics.KubeEventMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock`: wall-clock seconds, for timestamps and the correlation windows."""
        self.api = api
        self.metrics = event_metrics
        self.clock = clock
        self.name = "event recorder"
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(QUEUE_SIZE)
        self.correlator = Correlator()
        self._last_nanos = 0

    def event(
        self, source: Source, ref: ObjectReference, type_: str, reason: str, message: str
    ) -> None:
        """Record an Event about the object `ref` (never blocks, never raises)."""
        pending = _Pending(source, ref, type_, reason, message[:MESSAGE_LIMIT])
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self._count("dropped")
            logger.warning(
                "Dropped event %s %s about %s/%s: the queue is full.", type_, reason,
                ref.get("namespace", ""), ref.get("name", ""),
            )  # fmt: skip

    async def run(self) -> None:
        while True:
            pending = await self._queue.get()
            try:
                await self.write(pending)
            finally:
                self._queue.task_done()

    async def flush(self) -> None:
        """Wait until every Event queued so far is written (or given up)."""
        await self._queue.join()

    async def write(self, pending: _Pending) -> None:
        """Correlate one Event and write it: create, or patch its count."""
        now = self.clock()
        ref = pending.ref
        decision = self.correlator.correlate(
            pending.source, ref, pending.type, pending.reason, pending.message, now
        )
        if decision is None:
            self._count("filtered")
            return
        try:
            await self._send(pending, decision.key, decision.message, now)
        except kubeapi.NamespaceTerminating as exc:
            # nothing can be written there any more (a warning per Event flooded the logs of
            # every namespace's deletion)
            self._count("namespace_terminating")
            logger.debug("Event %s about %s/%s not recorded: %s", pending.reason,
                         ref.get("namespace", ""), ref.get("name", ""), exc)  # fmt: skip
        except kubeapi.ApiError as exc:
            self._count("failed")
            logger.warning(
                "Could not record event %s %s about %s %s/%s: %s", pending.type, pending.reason,
                ref.get("kind", ""), ref.get("namespace", ""), ref.get("name", ""), exc,
            )  # fmt: skip

    async def _send(
        self, pending: _Pending, key: tuple[str, ...], message: str, now: float
    ) -> None:
        ref = pending.ref
        namespace = ref.get("namespace") or "default"
        stamp = timestamp(now)
        known = self.correlator.written(key)
        if known is not None:
            body = {"count": known.count + 1, "lastTimestamp": stamp, "message": message}
            try:
                await self._retrying(
                    lambda: self.api.merge_patch(EVENTS, known.namespace, known.name, body)
                )
                known.count += 1
                self._count("updated")
                return
            except kubeapi.NotFound:
                pass  # expired (the apiserver keeps Events an hour) or deleted: a new one
        event = self._body(pending, namespace, message, stamp)
        created = await self._retrying(lambda: self.api.create(EVENTS, namespace, event))
        name = str(created.get("metadata", {}).get("name", event["metadata"]["name"]))
        self.correlator.remember(key, _Written(name, namespace, 1, stamp))
        self._count("created")

    def _body(self, pending: _Pending, namespace: str, message: str, stamp: str) -> dict[str, Any]:
        nanos = max(int(self.clock() * 1e9), self._last_nanos + 1)
        self._last_nanos = nanos
        source: dict[str, str] = {"component": pending.source.component}
        if pending.source.host:
            source["host"] = pending.source.host
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{pending.ref.get('name', '')}.{nanos:x}",
                "namespace": namespace,
            },
            "involvedObject": dict(pending.ref),
            "type": pending.type,
            "reason": pending.reason,
            "message": message,
            "source": source,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": pending.source.component,
            "reportingInstance": pending.source.host,
        }

    async def _retrying(self, call: Callable[[], Awaitable[kubeapi.Json]]) -> kubeapi.Json:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return await call()
            except kubeapi.ApiError as exc:
                transient = isinstance(exc, kubeapi.Unreachable) or exc.status >= 500
                if not transient or attempt == WRITE_ATTEMPTS:
                    raise
            await asyncio.sleep(float(2 ** (attempt - 1)))
        raise AssertionError("unreachable")

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.events.labels(outcome).inc()


class Emitter:
    """One component's view of the shared `Recorder` (client-go's `EventRecorder`)."""

    def __init__(self, recorder: Recorder | None, source: Source) -> None:
        """`recorder` None: Events are not recorded (tests of a reconciler alone)."""
        self.recorder = recorder
        self.source = source

    def event(self, ref: ObjectReference, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(self.source, ref, type_, reason, message)
