"""Re-reconcile an object when something it references changes (knative.dev/pkg/tracker).

A reconciler calls `track(key, resource, namespace, name)` for each object its outcome
depends on (a sink Service, an Addressable's `status.address`), replacing what it tracked
before with `track_only`. The tracker keeps one cluster-wide watch per referenced resource
collection, started on first use, and enqueues the keys of every tracker of an object
that is added, changed or deleted. So a sink Service created after its source makes the
source Ready without anyone touching the source.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

from controller import kubeapi, watching

logger = logging.getLogger(__name__)

Target = tuple[kubeapi.Resource, str, str]
"""(resource collection, namespace, name) of a referenced object."""


class Tracker:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        enqueue: Callable[[str], None],
        *,
        on_watch_restart: Callable[[str], None] | None = None,
    ) -> None:
        self.api = api
        self.enqueue = enqueue
        self.on_watch_restart = on_watch_restart
        self._by_target: dict[Target, set[str]] = defaultdict(set)
        self._by_key: dict[str, set[Target]] = defaultdict(set)
        self._watched: set[kubeapi.Resource] = set()
        self._pending: asyncio.Queue[kubeapi.Resource] = asyncio.Queue()
        self.name = "tracker"

    def track_only(self, key: str, targets: Iterable[Target]) -> None:
        """Make `targets` exactly what `key` depends on."""
        new = set(targets)
        for old in self._by_key.get(key, set()) - new:
            self._by_target[old].discard(key)
            if not self._by_target[old]:
                del self._by_target[old]
        self._by_key[key] = new
        if not new:
            del self._by_key[key]
        for target in new:
            self._by_target[target].add(key)
            if target[0] not in self._watched:
                self._watched.add(target[0])
                self._pending.put_nowait(target[0])

    def forget(self, key: str) -> None:
        self.track_only(key, ())

    def trackers_of(self, target: Target) -> set[str]:
        return set(self._by_target.get(target, ()))

    async def run(self) -> None:
        """Start a watch per referenced collection; runs until cancelled."""
        async with asyncio.TaskGroup() as group:
            while True:
                resource = await self._pending.get()
                watcher = watching.Watcher(
                    self.api,
                    resource,
                    self._handler(resource),
                    on_restart=self.on_watch_restart,
                )
                logger.info("Tracking changes of %s.", resource.plural)
                group.create_task(watcher.run(), name=watcher.name)

    def _handler(self, resource: kubeapi.Resource) -> watching.Handler:
        def handle(kind: str, obj: kubeapi.Json) -> None:
            meta = obj.get("metadata", {})
            target = (resource, str(meta.get("namespace", "")), str(meta.get("name", "")))
            for key in self.trackers_of(target):
                self.enqueue(key)

        return handle
