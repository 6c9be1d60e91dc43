"""The one list-then-watch loop of kevents: one resource collection, forever, never dying.

`Watcher.run()` lists the collection (page by page), then watches from the list's
resourceVersion with bookmarks, until cancelled. Every way a watch can end is a state of
the same loop, never an exception escaping it:

```
          +-----------------------------------------------+
          v                                               |
   [list] --ok--> [watch from resourceVersion] --ended---+  (server's timeoutSeconds,
      ^  \\              |      |       \\                    or the inactivity watchdog:
      |   \\             |      |        +--error--> backoff --> resume from resourceVersion
      |    +--error--> backoff  |
      |                         +--410 Gone--> forget the resourceVersion --+
      +----------------------------------------------------------------------+
   403 on list or watch: logged once (verb and resource), retried every `forbidden_retry`
```

- A 410 Gone (history compacted, or an expired `continue` token) does not relist inside an
  error handler: it forgets the resourceVersion and loops, so a relist that fails (a 503, a
  dropped connection) takes the same backoff as any other failure and is retried.
- Failures back off exponentially (0.5 s doubling up to `max_backoff`); the streak resets
  after a successful list or a watch that ended normally.
- The inactivity watchdog (knative/eventing#8675, nolar/kopf#698: watches that hang forever)
  is the socket read timeout: no line, not even a bookmark, for `inactivity` seconds ends
  the watch, which then resumes from the last resourceVersion.
- A 403 is a missing RBAC permission: granting it later starts the flow without a restart.

Two modes share this loop:

- stateless (`Watcher`, the controller's): the handler gets `(type, object)` for every
  listed object (`ADDED`) and every watch event (`ADDED`, `MODIFIED`, `DELETED`), label and
  field selectors. After a relist every object is handed over as `ADDED` again; an object
  deleted while the watch was down is not reported (the controller's periodic resync and
  finalizers cover it).
- caching (`kevents.informer.Informer`, the adapters' and the dispatcher's): keeps the last
  state of every object, emits only real changes, and diffs a relist against what it had seen.

Every restart is reported through `on_restart(reason)`, reason one of `RESTART_REASONS`.
`on_progress(resourceVersion, listed)` is called each time the loop has handed over
everything up to a resourceVersion (after a list, after each event and bookmark). A loop
created with `resource_version` (a checkpoint) skips the first list: it checks access with
a one-item list, then resumes the watch from there (410 Gone then lists as usual).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from kevents import kubeapi

logger = logging.getLogger(__name__)

Handler = Callable[[str, kubeapi.Json], None]
"""Stateless mode: called with the event type (ADDED, MODIFIED, DELETED) and the object."""

RESTART_REASONS = ("ended", "expired", "inactive", "forbidden", "error")
"""Why a watch restarted: the server ended it, 410 Gone (relist), the inactivity watchdog,
a missing permission, any other failure (apiserver error, connection lost, timeout)."""

INITIAL_BACKOFF = 0.5
"""First wait after a failure (seconds); doubles per failure in a row, up to `max_backoff`."""


def describe(resource: kubeapi.Resource, namespace: str | None) -> str:
    """A collection in words, for log lines: `pods/v1 in namespace x`."""
    group = f".{resource.group}" if resource.group else ""
    where = f"namespace {namespace}" if namespace else "all namespaces"
    return f"{resource.plural}{group}/{resource.version} in {where}"


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
        page_size: int = 500,
        max_backoff: float = 30.0,
        forbidden_retry: float = 30.0,
        on_restart: Callable[[str], None] | None = None,
        on_progress: Callable[[str, bool], None] | None = None,
        resource_version: str = "",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`server_timeout` (290 s) ends each watch server-side before typical 5-minute
        proxies do; `inactivity` (330 s) exceeds it plus the ~1 minute bookmark interval, so
        only a truly stuck connection trips the watchdog; `forbidden_retry` (30 s) re-checks
        a missing permission without flooding the log or the apiserver; `sleep` is the
        backoff's timer (tests record the waits)."""
        self.api = api
        self.resource = resource
        self.handler = handler
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.server_timeout = server_timeout
        self.inactivity = inactivity
        self.page_size = page_size
        self.max_backoff = max_backoff
        self.forbidden_retry = forbidden_retry
        self.on_restart = on_restart
        self.on_progress = on_progress
        self._sleep = sleep
        self._resource_version = resource_version
        self._scope: asyncio.Timeout | None = None
        self._waiting = False
        self._reconnect_wanted = False
        self.synced = asyncio.Event()
        """Set after the first successful list (the runner's readiness hook)."""
        self.attempted = asyncio.Event()
        """Set after the first list attempt, successful or forbidden."""
        where = f" in {namespace}" if namespace else ""
        self.name = f"watch {resource.plural}{where}"

    @property
    def resource_version(self) -> str:
        """Where the watch resumes from; empty while a (re)list is due."""
        return self._resource_version

    @property
    def path(self) -> str:
        return self.resource.path(self.namespace)

    def describe(self) -> str:
        return describe(self.resource, self.namespace)

    async def wait_started(self) -> None:
        await self.synced.wait()

    def reconnect(self) -> None:
        """Drop the current watch connection; the loop resumes from the last resourceVersion.

        A handler already running finishes first: only the wait for the next event is cut.
        """
        self._reconnect_wanted = True
        if self._scope is not None and self._waiting:
            self._scope.reschedule(asyncio.get_running_loop().time())

    def relist(self) -> None:
        """Forget the resourceVersion, as after 410 Gone: the next round lists again."""
        self._resource_version = ""
        self.reconnect()

    async def run(self) -> None:
        """List, then watch and resume, until cancelled. Never raises anything else."""
        failures = 0
        forbidden = False
        while True:
            try:
                if not self._resource_version:
                    await self._list()
                elif not self.synced.is_set():
                    await self._check_access()
                    if forbidden:
                        logger.info("Permission granted: now watching %s.", self.describe())
                        forbidden = False
                    failures = 0
                await self._watch()
                failures = 0
            except kubeapi.Gone as err:
                logger.info("Watch of %s expired (410: %s); listing again.", self.describe(),
                            err.message)  # fmt: skip
                self._resource_version = ""
                self._restarted("expired")
            except kubeapi.Forbidden as err:
                if not forbidden:
                    logger.error(
                        "Missing permission: cannot list/watch %s (%s). Grant get, list and "
                        "watch to this component's ServiceAccount; retrying every %.0f s.",
                        self.describe(), err.message, self.forbidden_retry,
                    )  # fmt: skip
                    forbidden = True
                self.attempted.set()
                self._restarted("forbidden")
                await self._sleep(self.forbidden_retry)
            except (kubeapi.ApiError, TimeoutError, OSError) as err:
                # ApiError covers Unreachable (refused, reset, dropped mid-stream) and
                # undecodable lines; TimeoutError a request that took too long.
                delay = min(self.max_backoff, INITIAL_BACKOFF * 2**failures)
                failures += 1
                what = "Watch" if self._resource_version else "List"
                logger.warning(
                    "%s of %s failed (%s); retrying in %.1f s from resourceVersion %r.",
                    what, self.describe(), err, delay, self._resource_version,
                    extra={"resource": self.resource.plural},
                )  # fmt: skip
                self._restarted("error")
                await self._sleep(delay)

    def _progress(self, listed: bool) -> None:
        if self.on_progress is not None and self._resource_version:
            self.on_progress(self._resource_version, listed)

    async def _check_access(self) -> None:
        """Before resuming from a given resourceVersion: one list item proves list access."""
        await self.api.request("GET", self.path, query=[*self._selectors(), ("limit", "1")])
        self.attempted.set()
        self.synced.set()

    def _restarted(self, reason: str) -> None:
        if self.on_restart is not None:
            self.on_restart(reason)

    def _selectors(self) -> list[tuple[str, str]]:
        query = []
        if self.label_selector:
            query.append(("labelSelector", self.label_selector))
        if self.field_selector:
            query.append(("fieldSelector", self.field_selector))
        return query

    async def _list(self) -> None:
        """List every page, hand the objects over, and remember the list's resourceVersion."""
        query = [*self._selectors(), ("limit", str(self.page_size))]
        items: list[kubeapi.Json] = []
        token = ""
        while True:
            page = await self.api.request(
                "GET", self.path, query=[*query, ("continue", token)] if token else query
            )
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = str(meta.get("continue") or "")
            if not token:
                break
        await self._listed(items)
        self._resource_version = str(meta.get("resourceVersion", ""))
        self._progress(listed=True)
        self.attempted.set()
        self.synced.set()

    async def _watch(self) -> None:
        """Watch from the resourceVersion until the server, the watchdog or `reconnect` ends it."""
        query = [
            *self._selectors(),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", self._resource_version),
            ("timeoutSeconds", str(self.server_timeout)),
        ]
        events = self.api.watch(self.path, query, read_timeout=self.inactivity)
        try:
            async with asyncio.timeout(None) as scope:
                self._scope = scope
                while not self._reconnect_wanted:
                    self._waiting = True
                    try:
                        kind, obj = await anext(events)
                    except StopAsyncIteration:
                        break  # the server ended the watch (timeoutSeconds)
                    finally:
                        self._waiting = False
                    version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
                    if kind != "BOOKMARK":
                        await self._event(kind, obj)
                    self._resource_version = version or self._resource_version
                    self._progress(listed=False)
            self._restarted("ended")
        except TimeoutError:
            if scope.expired():
                self._restarted("ended")  # `reconnect()` asked for it
                return
            logger.warning("No event or bookmark on the watch of %s for %g s; reconnecting.",
                           self.describe(), self.inactivity)  # fmt: skip
            self._restarted("inactive")
        finally:
            self._scope = None
            self._reconnect_wanted = False
            await events.aclose()

    async def _listed(self, items: list[kubeapi.Json]) -> None:
        """Stateless mode: every listed object is `ADDED`. The caching mode diffs instead."""
        for item in items:
            self.handler("ADDED", item)

    async def _event(self, kind: str, obj: kubeapi.Json) -> None:
        """Stateless mode: hand every watch event over. The caching mode filters."""
        self.handler(kind, obj)
