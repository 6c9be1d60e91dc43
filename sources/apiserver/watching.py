"""One resource in one namespace (or all): list, then watch, forever, without gaps or doubles.

The watcher keeps the last seen state of every object (uid -> resourceVersion and object), so:

- a watch that ends, times out or goes silent (no line, not even a bookmark, for
  `inactivity` seconds: the watchdog of knative/eventing#8675) resumes from the last
  resourceVersion and loses nothing;
- a MODIFIED whose resourceVersion did not change (a resync echo) is dropped, never re-sent;
- after 410 Gone (history compacted) it lists again and emits only the difference against what
  it had seen: `add` for new objects, `update` for changed ones, `delete` (with the last known
  state) for objects that vanished meanwhile;
- objects that exist at start are recorded, not emitted (Knative emits only changes).

A 403 on list is logged once, naming the verb and resource; the watcher retries slowly, so
granting the permission later starts the flow without a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from kubernetes_asyncio import client

from kevents import kube
from sources.apiserver import config, events, metrics

logger = logging.getLogger(__name__)

Emit = Callable[[events.Change, dict[str, Any]], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """What one watcher covers: a resource, its kind, and a namespace (None = all)."""

    resource: config.Resource
    kind: str
    namespace: str | None

    def path(self) -> str:
        r = self.resource
        return kube.resource_path(r.group, r.version, r.resource, self.namespace)

    def describe(self) -> str:
        where = f"namespace {self.namespace}" if self.namespace else "all namespaces"
        return f"{self.resource} in {where}"


def _newer(rv: str, than: str) -> bool:
    """True when `rv` is a later version than `than`.

    resourceVersions are opaque, but etcd-backed servers use increasing integers; comparing them
    drops resync echoes (same version) and replays of older history after a resume.
    """
    if rv.isdigit() and than.isdigit():
        return int(rv) > int(than)
    return rv != than


class Gone(Exception):
    """The watch's resourceVersion is too old (410): relist."""


@dataclasses.dataclass(slots=True)
class _Seen:
    resource_version: str
    obj: dict[str, Any]


class Watcher:
    def __init__(
        self,
        api: client.ApiClient,
        target: Target,
        emit: Emit,
        *,
        watch_metrics: metrics.WatchMetrics,
        owner: config.Owner | None = None,
        watch_timeout: int = 300,
        inactivity: float = 90.0,
        page_size: int = 500,
        forbidden_retry: float = 30.0,
        max_backoff: float = 30.0,
    ) -> None:
        """`watch_timeout` (300 s) asks the server to end each watch so connections renew;
        `inactivity` (90 s) is longer than the server's 60 s bookmark interval, so only a dead
        connection trips it; `forbidden_retry` (30 s) re-checks a missing permission."""
        self._api = api
        self.target = target
        self._emit = emit
        self._metrics = watch_metrics
        self._owner = owner
        self._watch_timeout = watch_timeout
        self._inactivity = inactivity
        self._page_size = page_size
        self._forbidden_retry = forbidden_retry
        self._max_backoff = max_backoff
        self._seen: dict[str, _Seen] = {}
        self._resource_version = ""
        self._listed_once = False
        self._response: aiohttp.ClientResponse | None = None
        self.attempted = asyncio.Event()
        """Set after the first list attempt, successful or forbidden (readiness)."""
        self.listed = asyncio.Event()
        """Set after the first successful list."""

    @property
    def resource_version(self) -> str:
        return self._resource_version

    def _with_type(self, obj: dict[str, Any]) -> dict[str, Any]:
        # List items carry no kind/apiVersion; events and subjects need them.
        obj.setdefault("kind", self.target.kind)
        obj.setdefault("apiVersion", self.target.resource.api_version)
        return obj

    async def _list(self) -> tuple[dict[str, dict[str, Any]], str]:
        items: dict[str, dict[str, Any]] = {}
        token = ""
        while True:
            params = [("limit", str(self._page_size))]
            if self.target.resource.selector:
                params.append(("labelSelector", self.target.resource.selector))
            if token:
                params.append(("continue", token))
            page = await kube.get_json(self._api, self.target.path(), params)
            for item in page.get("items") or []:
                obj = self._with_type(item)
                items[obj["metadata"]["uid"]] = obj
            meta = page.get("metadata") or {}
            token = meta.get("continue") or ""
            if not token:
                return items, str(meta.get("resourceVersion", ""))

    async def _sync(self) -> None:
        """List and reconcile the known state with it (emitting differences after the first)."""
        items, resource_version = await self._list()
        if self._listed_once:
            for uid, obj in items.items():
                seen = self._seen.get(uid)
                if seen is None:
                    await self._send(events.Change.ADD, obj)
                elif seen.resource_version != obj["metadata"].get("resourceVersion"):
                    await self._send(events.Change.UPDATE, obj)
            for uid in [uid for uid in self._seen if uid not in items]:
                await self._send(events.Change.DELETE, self._seen[uid].obj)
        self._seen = {
            uid: _Seen(str(obj["metadata"].get("resourceVersion", "")), obj)
            for uid, obj in items.items()
        }
        self._resource_version = resource_version
        self._listed_once = True
        self.listed.set()

    async def _send(self, change: events.Change, obj: dict[str, Any]) -> None:
        if events.owned_by(obj, self._owner):
            await self._emit(change, obj)

    async def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        """Apply one watch event to the known state and emit what changed."""
        meta = obj.get("metadata") or {}
        rv = str(meta.get("resourceVersion", ""))
        if kind == "BOOKMARK":
            self._resource_version = rv or self._resource_version
            return
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message", "resource version too old"))
            raise kube.ApiError(int(obj.get("code") or 500), str(obj.get("message")), "watch")
        obj = self._with_type(obj)
        uid = str(meta.get("uid", ""))
        seen = self._seen.get(uid)
        if kind == "DELETED":
            self._seen.pop(uid, None)
            await self._send(events.Change.DELETE, obj)
        elif seen is not None and not _newer(rv, seen.resource_version):
            self._metrics.duplicates_suppressed.inc()
        else:
            self._seen[uid] = _Seen(rv, obj)
            change = events.Change.ADD if seen is None else events.Change.UPDATE
            await self._send(change, obj)
        self._resource_version = rv or self._resource_version

    async def _watch(self) -> None:
        params = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", self._resource_version),
            ("timeoutSeconds", str(self._watch_timeout)),
        ]
        if self.target.resource.selector:
            params.append(("labelSelector", self.target.resource.selector))
        response = await kube.open_stream(
            self._api, self.target.path(), params, read_timeout=self._inactivity
        )
        self._response = response
        try:
            while True:
                line = await response.content.readline()
                if not line:
                    return  # the server ended the watch (timeoutSeconds): resume
                if not line.strip():
                    continue
                event = orjson.loads(line)
                await self._apply(str(event.get("type")), event.get("object") or {})
        finally:
            self._response = None
            response.release()

    def reconnect(self) -> None:
        """Drop the current watch connection; `run()` resumes from the last resourceVersion."""
        if self._response is not None:
            self._response.close()

    def relist(self) -> None:
        """Forget the resourceVersion, as after 410 Gone: the next round lists and diffs."""
        self._resource_version = ""
        self.reconnect()

    async def run(self) -> None:
        """List, then watch and resume until cancelled."""
        backoff = 0.5
        describe = self.target.describe()
        warned_forbidden = False
        self._metrics.watches_active.inc()
        try:
            while True:
                try:
                    if not self._listed_once or not self._resource_version:
                        await self._sync()
                        if warned_forbidden:
                            logger.info("Permission granted: now watching %s.", describe)
                            warned_forbidden = False
                        self.attempted.set()
                    await self._watch()
                    backoff = 0.5
                    self._metrics.restarts.labels("ended").inc()
                except Gone:
                    logger.info("Watch of %s expired (410); listing again.", describe)
                    self._metrics.restarts.labels("expired").inc()
                    await self._sync()
                except kube.ApiError as err:
                    if err.status == 403:
                        if not warned_forbidden:
                            logger.error(
                                "Missing permission: cannot list/watch %s (%s). Grant get, list "
                                "and watch to the source's ServiceAccount; retrying every %.0f s.",
                                describe, err.reason, self._forbidden_retry,
                            )  # fmt: skip
                            warned_forbidden = True
                        self._metrics.restarts.labels("forbidden").inc()
                        self.attempted.set()
                        await asyncio.sleep(self._forbidden_retry)
                        continue
                    if err.status == 410:
                        self._metrics.restarts.labels("expired").inc()
                        self._resource_version = ""
                        continue
                    logger.warning("Watching %s failed: %s; retrying.", describe, err)
                    self._metrics.restarts.labels("error").inc()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                except (TimeoutError, OSError, ValueError, aiohttp.ClientError) as err:
                    # ValueError covers orjson decode errors and aiohttp payload errors.
                    reason = "inactive" if isinstance(err, TimeoutError) else "error"
                    logger.warning(
                        "Watch of %s broke (%s: %s); resuming from resourceVersion %s.",
                        describe, type(err).__name__, err, self._resource_version,
                    )  # fmt: skip
                    self._metrics.restarts.labels(reason).inc()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
        finally:
            self._metrics.watches_active.dec()
