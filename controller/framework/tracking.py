"""Re-reconcile an object when something it references changes (knative.dev/pkg/tracker).

A reconciler calls `track_only(key, targets)` on its `Scope` with every object its outcome
depends on (a sink Service, an Addressable's `status.address`, a channel), replacing what it
tracked before. One `Tracker` is shared by every controller of the process: it keeps one
cluster-wide watch per referenced resource collection, started on first use, and enqueues
the key of every tracker of an object that is added, changed or deleted into the queue of
the controller that tracked it. So a sink Service created after its source makes the source
Ready without anyone touching the source, and two kinds tracking Services share one watch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

from kevents import kubeapi, watching

logger = logging.getLogger(__name__)

Target = tuple[kubeapi.Resource, str, str]
"""(resource collection, namespace, name) of a referenced object."""

Owner = tuple[str, str]
"""(scope name, key of the tracking object)."""


class Tracker:
    def __init__(
        self, api: kubeapi.KubeApi, *, on_watch_restart: Callable[[str], None] | None = None
    ) -> None:
        self.api = api
        self.on_watch_restart = on_watch_restart
        self._enqueue: dict[str, Callable[[str], None]] = {}
        self._by_target: dict[Target, set[Owner]] = defaultdict(set)
        self._by_owner: dict[Owner, set[Target]] = defaultdict(set)
        self._watched: set[kubeapi.Resource] = set()
        self._pending: asyncio.Queue[kubeapi.Resource] = asyncio.Queue()
        self.name = "tracker"

    def scope(self, name: str, enqueue: Callable[[str], None]) -> Scope:
        """The tracking of one controller (`name`, usually its kind), enqueueing with
        `enqueue`."""
        self._enqueue[name] = enqueue
        return Scope(self, name)

    def track_only(self, owner: Owner, targets: Iterable[Target]) -> None:
        """Make `targets` exactly what `owner` depends on."""
        new = set(targets)
        for old in self._by_owner.get(owner, set()) - new:
            self._by_target[old].discard(owner)
            if not self._by_target[old]:
                del self._by_target[old]
        self._by_owner[owner] = new
        if not new:
            del self._by_owner[owner]
        for target in new:
            self._by_target[target].add(owner)
            if target[0] not in self._watched:
                self._watched.add(target[0])
                self._pending.put_nowait(target[0])

    def trackers_of(self, target: Target) -> set[Owner]:
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
            for scope, key in self.trackers_of(target):
                self._enqueue[scope](key)

        return handle


class Scope:
    """One controller's view of the shared tracker: keys are its own `namespace/name`."""

    def __init__(self, tracker: Tracker, name: str) -> None:
        self.tracker = tracker
        self.name = name

    def track_only(self, key: str, targets: Iterable[Target]) -> None:
        self.tracker.track_only((self.name, key), targets)

    def forget(self, key: str) -> None:
        self.tracker.track_only((self.name, key), ())

    def trackers_of(self, target: Target) -> set[str]:
        return {key for scope, key in self.tracker.trackers_of(target) if scope == self.name}
