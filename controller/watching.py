"""List-then-watch of one resource collection that never dies silently.

`Watcher.run()` lists (handing every object to the handler as ADDED), then watches from the
list's resourceVersion with bookmarks. It resumes from the last seen resourceVersion when
the server ends a watch (`timeoutSeconds`), re-lists on 410 Gone, and retries any other
failure with capped exponential backoff. An inactivity watchdog (the socket read timeout)
ends a watch that stays silent longer than `inactivity` seconds even though bookmarks
should have arrived (knative/eventing#8675, nolar/kopf#698: watches that hang forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from kevents import kubeapi

logger = logging.getLogger(__name__)

Handler = Callable[[str, kubeapi.Json], None]
"""Called with the event type (ADDED, MODIFIED, DELETED) and the object."""


class Watcher:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        resource: kubeapi.Resource,
        handler: Handler,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        server_timeout: int = 290,
        inactivity: float = 330.0,
        max_backoff: float = 30.0,
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        """`server_timeout` (290 s) ends each watch server-side before typical 5-minute
        proxies do; `inactivity` (330 s) exceeds it plus the ~1 minute bookmark interval,
        so only a truly stuck connection trips the watchdog."""
        self.api = api
        self.resource = resource
        self.handler = handler
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.server_timeout = server_timeout
        self.inactivity = inactivity
        self.max_backoff = max_backoff
        self.on_restart = on_restart
        self.synced = asyncio.Event()
        self.name = f"watch {resource.plural}" + (f" in {namespace}" if namespace else "")

    async def wait_started(self) -> None:
        await self.synced.wait()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                version = await self._list()
                failures = 0
                while True:
                    version = await self._watch(version)
            except asyncio.CancelledError:
                raise
            except kubeapi.Gone:
                logger.info("%s: resourceVersion expired; listing again.", self.name)
                self._restarted("gone")
            except Exception as exc:
                delay = min(self.max_backoff, 0.5 * 2**failures)
                failures += 1
                logger.warning(
                    "%s failed (%s); restarting in %.1f s.", self.name, exc, delay,
                    extra={"resource": self.resource.plural},
                )  # fmt: skip
                self._restarted("error")
                await asyncio.sleep(delay)

    def _restarted(self, reason: str) -> None:
        if self.on_restart is not None:
            self.on_restart(reason)

    def _query(self) -> list[tuple[str, str]]:
        query = []
        if self.label_selector:
            query.append(("labelSelector", self.label_selector))
        if self.field_selector:
            query.append(("fieldSelector", self.field_selector))
        return query

    async def _list(self) -> str:
        path = self.resource.path(self.namespace)
        query = [*self._query(), ("limit", "500")]
        version = ""
        cont = ""
        while True:
            page = await self.api.request(
                "GET", path, query=[*query, ("continue", cont)] if cont else query
            )
            for item in page.get("items", []):
                self.handler("ADDED", item)
            meta = page.get("metadata", {})
            version = str(meta.get("resourceVersion", ""))
            cont = str(meta.get("continue", "") or "")
            if not cont:
                break
        self.synced.set()
        return version

    async def _watch(self, version: str) -> str:
        """Watch from `version` until the server ends the watch; returns the last version."""
        query = [
            *self._query(),
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", version),
            ("timeoutSeconds", str(self.server_timeout)),
        ]
        events = self.api.stream(
            self.resource.path(self.namespace), query, read_timeout=self.inactivity
        )
        try:
            # aclosing: an exception raised here (a 410 ERROR event) must close the stream's
            # response now, not whenever the suspended generator is garbage-collected.
            async with contextlib.aclosing(events):
                async for event in events:
                    kind = str(event.get("type", ""))
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        code = int(obj.get("code", 0))
                        message = str(obj.get("message", ""))
                        if code == 410:
                            raise kubeapi.Gone(410, "Expired", message, "WATCH", self.name)
                        reason = str(obj.get("reason", ""))
                        raise kubeapi.ApiError(code, reason, message, "WATCH", "")
                    version = str(obj.get("metadata", {}).get("resourceVersion", version))
                    if kind != "BOOKMARK":
                        self.handler(kind, obj)
        except TimeoutError:
            logger.warning(
                "%s: no event or bookmark for %.0f s; reconnecting.", self.name, self.inactivity
            )
            self._restarted("inactivity")
        return version
