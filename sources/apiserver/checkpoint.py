"""Where the ApiServerSource adapter resumes after a restart: the last *delivered* position.

Knative's adapter lists and watches afresh on every start, so every change made while it was
down is lost, silently. This adapter keeps, per watched collection, the resourceVersion up to
which every event was delivered (or given up after its retries, which is counted as a loss
where it happens) and the state of the collection at that version (uid -> resourceVersion,
namespace, name; at most `MAX_OBJECTS` objects in all). On start it resumes each watch from
there:

- within the API server's watch window, the watch replays every change made meanwhile, each
  delivered once (the known state suppresses nothing that was not delivered);
- past it (410 Gone), the informer lists and emits the difference against the saved state:
  `add`, `update` (the latest state only) and `delete` (with the saved identity: in Resource
  mode the data is a stub with kind, apiVersion and metadata name/namespace/uid/
  resourceVersion). Intermediate versions and objects created and deleted while the adapter
  was down cannot be recovered: such a resume is counted in
  `kevents_apiserver_unrecoverable_total{reason="expired"}`; a start without a usable
  checkpoint (unreadable, forbidden, too large) as `reason` of that name.

The position advances only over a gap-free prefix: `Progress` numbers the watch positions
in order; a position is delivered when every event emitted up to it has finished. Events of
different objects finish out of order (parallel send queues), so a later position waits for
earlier ones. The checkpoint lives in a ConfigMap in the source's namespace,
`<source name>-apiserversource-checkpoint`, owned by the ApiServerSource (garbage-collected
with it), written at most every `interval` seconds and once more after the queues drained at
shutdown. Its ServiceAccount needs `get`, `create` and `patch` on that ConfigMap; without
them the adapter runs as Knative's does and says so once.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import sys
from collections.abc import Mapping
from typing import Any

from kevents import informer, kubeapi, settings
from sources.apiserver import metrics as source_metrics

logger = logging.getLogger(__name__)

CONFIGMAPS = kubeapi.Resource("", "v1", "configmaps")
KEY = "checkpoint.json"
SUFFIX = "-apiserversource-checkpoint"
MAX_OBJECTS = 5000
"""Objects remembered in all (about 100 bytes each: 0.5 MB, half a ConfigMap's 1 MiB)."""
INTERVAL = 5.0
"""Seconds between writes (`KEVENTS_CHECKPOINT_SECONDS`): a write costs the API server one
patch; after a kill -9 the watch resumes from the last write, so the events of at most that
many seconds before the kill are delivered a second time (SIGTERM writes the final position
after the queues drained: none)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    enabled: bool = True
    """KEVENTS_CHECKPOINT (true): false runs as Knative's adapter, missing what happens while
    it is down (e.g. a ServiceAccount that may not write ConfigMaps, without the error)."""
    interval: float = INTERVAL
    """KEVENTS_CHECKPOINT_SECONDS (5): see `INTERVAL`."""
    source_uid: str = ""
    """K_SOURCE_UID, set by the controller: the checkpoint's owner (garbage collection) and
    its guard against resuming from an earlier source of the same name."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        reader = settings.EnvReader(environ)
        out = cls(
            enabled=reader.boolean("KEVENTS_CHECKPOINT", True),
            interval=reader.number(
                "KEVENTS_CHECKPOINT_SECONDS", INTERVAL, minimum=0.05, maximum=300.0
            ),
            source_uid=reader.string("K_SOURCE_UID"),
        )
        reader.check()
        return out


Identity = tuple[str, str, str]
"""(resourceVersion, namespace, name) of one object; the namespace interned (a few shared by
every object: each object's own copy would cost ~60 bytes)."""


def identity(meta: Mapping[str, Any]) -> Identity:
    """The `Identity` in an object's metadata."""
    return (
        str(meta.get("resourceVersion", "")),
        sys.intern(str(meta.get("namespace", ""))),
        str(meta.get("name", "")),
    )


def configmap_name(source_name: str) -> str:
    return source_name + SUFFIX


@dataclasses.dataclass(slots=True)
class _Position:
    resource_version: str = ""
    outstanding: int = 0
    changes: dict[str, Identity | None] = dataclasses.field(default_factory=dict)
    snapshot: dict[str, Identity] | None = None


class Progress:
    """The delivered prefix of one collection's watch."""

    def __init__(self, collection: informer.Collection, known: Mapping[str, Identity]) -> None:
        self.collection = collection
        self.delivered_rv = ""
        self.delivered: dict[str, Identity] = dict(known)
        self.dirty = False
        self._open = _Position()
        self._positions: collections.deque[_Position] = collections.deque()

    def opened(self, change: informer.Change, obj: Mapping[str, Any], *, event: bool) -> object:
        """Record a change handed over before the next position; `event`: one is in flight.

        Returns a token for `finished` (when `event`)."""
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        self._open.changes[uid] = None if change is informer.Change.DELETE else identity(meta)
        if event:
            self._open.outstanding += 1
        return self._open

    def mark(self, resource_version: str, snapshot: dict[str, Identity] | None) -> None:
        """Everything handed over so far belongs to `resource_version` (a list: `snapshot`)."""
        position, self._open = self._open, _Position()
        position.resource_version = resource_version
        position.snapshot = snapshot
        self._positions.append(position)
        self._advance()

    def finished(self, token: object) -> None:
        assert isinstance(token, _Position)
        token.outstanding -= 1
        self._advance()

    def _advance(self) -> None:
        while self._positions and self._positions[0].outstanding == 0:
            position = self._positions.popleft()
            if position.snapshot is not None:
                self.delivered = dict(position.snapshot)
            for uid, identity in position.changes.items():
                if identity is None:
                    self.delivered.pop(uid, None)
                else:
                    self.delivered[uid] = identity
            self.delivered_rv = position.resource_version
            self.dirty = True


def identities(objects: list[dict[str, Any]]) -> dict[str, Identity]:
    out: dict[str, Identity] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        out[str(meta.get("uid", ""))] = identity(meta)
    return out


def stub(collection: informer.Collection, uid: str, identity: Identity) -> dict[str, Any]:
    """What a delete after an expired resume carries: the object's saved identity."""
    rv, namespace, name = identity
    meta = {"name": name, "uid": uid, "resourceVersion": rv}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": collection.kind, "apiVersion": collection.api_version, "metadata": meta}


@dataclasses.dataclass(frozen=True, slots=True)
class Saved:
    """One collection's saved position."""

    resource_version: str
    known: dict[str, Identity]


class Checkpoint:
    """Loads and writes the checkpoint ConfigMap; `run()` writes it every `interval` s."""

    def __init__(
        self,
        api: kubeapi.KubeApi,
        namespace: str,
        source_name: str,
        source_uid: str,
        metrics: source_metrics.SourceMetrics,
        *,
        interval: float = INTERVAL,
        max_objects: int = MAX_OBJECTS,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = configmap_name(source_name)
        self.source_name = source_name
        self.source_uid = source_uid
        self.interval = interval
        self.max_objects = max_objects
        self.progress: list[Progress] = []
        self._metrics = metrics
        self._exists = False
        self._enabled = True
        self._lock = asyncio.Lock()

    async def load(self) -> dict[str, Saved]:
        """The saved positions by collection (`Collection.describe()`); {} without any."""
        try:
            found = await self.api.get(CONFIGMAPS, self.namespace, self.name)
        except kubeapi.NotFound:
            logger.info("No checkpoint %s/%s: starting afresh.", self.namespace, self.name)
            return {}
        except kubeapi.Forbidden as err:
            self._disabled("forbidden", err.message)
            return {}
        except kubeapi.ApiError as err:
            logger.warning("Cannot read checkpoint %s/%s (%s); starting afresh.",
                           self.namespace, self.name, err)  # fmt: skip
            self._metrics.unrecoverable.labels("unreadable").inc()
            return {}
        self._exists = True
        try:
            doc = json.loads((found.get("data") or {}).get(KEY) or "{}")
            if doc.get("sourceUID", "") != self.source_uid:
                logger.info("Checkpoint %s belongs to an earlier source of that name; ignored.",
                            self.name)  # fmt: skip
                return {}
            out: dict[str, Saved] = {}
            for where, entry in (doc.get("collections") or {}).items():
                objects = entry.get("objects")
                if objects is None:  # too many objects were watched to save their state
                    self._metrics.unrecoverable.labels("too_large").inc()
                    continue
                known = {
                    uid: (str(v[0]), sys.intern(str(v[1])), str(v[2])) for uid, v in objects.items()
                }
                out[str(where)] = Saved(str(entry["resourceVersion"]), known)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            logger.warning("Checkpoint %s is not readable; starting afresh.", self.name)
            self._metrics.unrecoverable.labels("unreadable").inc()
            return {}
        logger.info("Resuming %d watch(es) from checkpoint %s/%s.", len(out), self.namespace,
                    self.name)  # fmt: skip
        return out

    def _disabled(self, reason: str, message: str) -> None:
        if self._enabled:
            logger.error(
                "Checkpoint %s/%s is not accessible (%s): changes made while this adapter is "
                "down will be missed, as in Knative. Grant its ServiceAccount get, create and "
                "patch on that ConfigMap.", self.namespace, self.name, message,
            )  # fmt: skip
            self._metrics.unrecoverable.labels(reason).inc()
        self._enabled = False

    def _document(self) -> str:
        budget = self.max_objects
        collections_doc: dict[str, Any] = {}
        for progress in self.progress:
            if not progress.delivered_rv:
                continue
            entry: dict[str, Any] = {"resourceVersion": progress.delivered_rv}
            if len(progress.delivered) <= budget:
                budget -= len(progress.delivered)
                # as it is: its tuples are JSON arrays, and a copy of up to MAX_OBJECTS small
                # objects every interval would stay in the process as heap fragmentation
                entry["objects"] = progress.delivered
            else:
                entry["objects"] = None
            collections_doc[progress.collection.describe()] = entry
        doc = {"sourceUID": self.source_uid, "collections": collections_doc}
        return json.dumps(doc, separators=(",", ":"))

    async def write(self) -> None:
        """Save the delivered positions if they moved since the last write."""
        if not self._enabled or not any(p.dirty for p in self.progress):
            return
        async with self._lock:
            dirty = [p for p in self.progress if p.dirty]
            for p in dirty:
                p.dirty = False
            data = {KEY: self._document()}
            try:
                if self._exists:
                    await self.api.merge_patch(CONFIGMAPS, self.namespace, self.name,
                                               {"data": data})  # fmt: skip
                else:
                    await self.api.create(CONFIGMAPS, self.namespace, self._configmap(data))
                    self._exists = True
            except kubeapi.Forbidden as err:
                self._disabled("forbidden", err.message)
            except kubeapi.Conflict:
                self._exists = True  # created meanwhile (an earlier pod): patch next time
                for p in dirty:
                    p.dirty = True
            except kubeapi.ApiError as err:
                self._exists = not isinstance(err, kubeapi.NotFound) and self._exists
                logger.warning("Writing checkpoint %s failed (%s); retrying.", self.name, err)
                self._metrics.checkpoint_writes.labels("failed").inc()
                for p in dirty:
                    p.dirty = True
            else:
                self._metrics.checkpoint_writes.labels("ok").inc()

    def _configmap(self, data: dict[str, str]) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {"sources.knative.dev/apiserversource": self.source_name[:63]},
        }
        if self.source_uid:
            meta["ownerReferences"] = [
                {"apiVersion": "sources.knative.dev/v1", "kind": "ApiServerSource",
                 "name": self.source_name, "uid": self.source_uid}
            ]  # fmt: skip
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.write()

    async def stop(self) -> None:
        """Runner hook, after the send queues drained: the final position."""
        await asyncio.shield(self.write())
