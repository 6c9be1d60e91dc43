"""An informer: one collection (a resource in one namespace, or all), listed then watched
forever, without gaps or doubles. Shared by sources, the dispatcher and adapters.

The informer keeps the last seen state of every object (uid -> resourceVersion and object), so:

- a watch that ends, times out or goes silent (no line, not even a bookmark, for
  `inactivity` seconds: the watchdog of knative/eventing#8675) resumes from the last
  resourceVersion and loses nothing;
- a MODIFIED whose resourceVersion did not change (a resync echo) is dropped, never re-sent;
- after 410 Gone (history compacted) it lists again and emits only the difference against what
  it had seen: `add` for new objects, `update` for changed ones, `delete` (with the last known
  state) for objects that vanished meanwhile;
- objects that exist at start are handed over as `add` when `initial=True` (a cache, e.g. the
  dispatcher's channels), or only recorded (ApiServerSource: Knative emits only changes).

A 403 on list is logged once, naming the verb and resource; the informer retries slowly, so
granting the permission later starts the flow without a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry, Counter, Gauge

from kevents import kubeapi

logger = logging.getLogger(__name__)


class Change(enum.StrEnum):
    ADD = "add"
    UPDATE = "update"
    DELETE = "delete"


Handler = Callable[[Change, dict[str, Any]], Awaitable[None]]
"""Called once per change, in order, with the object (its last known state for a delete)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Collection:
    """What one informer covers: group/version/plural, kind, namespace (None = all), selector."""

    group: str
    version: str
    resource: str
    kind: str
    namespace: str | None = None
    label_selector: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self) -> str:
        return kubeapi.resource_path(self.group, self.version, self.resource, self.namespace)

    def describe(self) -> str:
        name = (
            f"{self.resource}.{self.group}/{self.version}"
            if self.group
            else (f"{self.resource}/{self.version}")
        )
        where = f"namespace {self.namespace}" if self.namespace else "all namespaces"
        return f"{name} in {where}"


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


class Gone(Exception):
    """The watch's resourceVersion is too old (410): relist."""


@dataclasses.dataclass(slots=True)
class _Seen:
    resource_version: str
    obj: dict[str, Any]


class Informer:
    def __init__(
        self,
        api: client.ApiClient,
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
    ) -> None:
        """`watch_timeout` (300 s) asks the server to end each watch so connections renew;
        `inactivity` (90 s) is longer than the server's 60 s bookmark interval, so only a dead
        connection trips it; `forbidden_retry` (30 s) re-checks a missing permission."""
        self._api = api
        self.collection = collection
        self._handler = handler
        self._metrics = informer_metrics
        self._initial = initial
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

    def objects(self) -> list[dict[str, Any]]:
        """The last known state of every object in the collection."""
        return [seen.obj for seen in self._seen.values()]

    async def wait_started(self) -> None:
        """Runner hook: started once the first list succeeded."""
        await self.listed.wait()

    def _with_type(self, obj: dict[str, Any]) -> dict[str, Any]:
        # List items carry no kind/apiVersion; events and subjects need them.
        obj.setdefault("kind", self.collection.kind)
        obj.setdefault("apiVersion", self.collection.api_version)
        return obj

    async def _list(self) -> tuple[dict[str, dict[str, Any]], str]:
        items: dict[str, dict[str, Any]] = {}
        token = ""
        while True:
            params = [("limit", str(self._page_size))]
            if self.collection.label_selector:
                params.append(("labelSelector", self.collection.label_selector))
            if token:
                params.append(("continue", token))
            page = await kubeapi.get_json(self._api, self.collection.path(), params)
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
        if not self._listed_once and self._initial:
            for obj in items.values():
                await self._handler(Change.ADD, obj)
        if self._listed_once:
            for uid, obj in items.items():
                seen = self._seen.get(uid)
                if seen is None:
                    await self._handler(Change.ADD, obj)
                elif seen.resource_version != obj["metadata"].get("resourceVersion"):
                    await self._handler(Change.UPDATE, obj)
            for uid in [uid for uid in self._seen if uid not in items]:
                await self._handler(Change.DELETE, self._seen[uid].obj)
        self._seen = {
            uid: _Seen(str(obj["metadata"].get("resourceVersion", "")), obj)
            for uid, obj in items.items()
        }
        self._resource_version = resource_version
        self._listed_once = True
        self.listed.set()

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
            raise kubeapi.ApiError(
                int(obj.get("code") or 500),
                str(obj.get("reason", "")),
                str(obj.get("message")),
                "WATCH",
                self.collection.path(),
            )
        obj = self._with_type(obj)
        uid = str(meta.get("uid", ""))
        seen = self._seen.get(uid)
        if kind == "DELETED":
            self._seen.pop(uid, None)
            await self._handler(Change.DELETE, obj)
        elif seen is not None and not _newer(rv, seen.resource_version):
            self._metrics.duplicates_suppressed.inc()
        else:
            self._seen[uid] = _Seen(rv, obj)
            change = Change.ADD if seen is None else Change.UPDATE
            await self._handler(change, obj)
        self._resource_version = rv or self._resource_version

    async def _watch(self) -> None:
        params = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", self._resource_version),
            ("timeoutSeconds", str(self._watch_timeout)),
        ]
        if self.collection.label_selector:
            params.append(("labelSelector", self.collection.label_selector))
        response = await kubeapi.open_stream(
            self._api, self.collection.path(), params, read_timeout=self._inactivity
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
        describe = self.collection.describe()
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
                except kubeapi.ApiError as err:
                    if err.status == 403:
                        if not warned_forbidden:
                            logger.error(
                                "Missing permission: cannot list/watch %s (%s). Grant get, list "
                                "and watch to the source's ServiceAccount; retrying every %.0f s.",
                                describe, err.message, self._forbidden_retry,
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
