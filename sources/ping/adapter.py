"""The multi-tenant PingSource adapter: informer changes -> timetable -> fenced ticks -> sinks.

Firing is at-most-once per tick, across restarts and failovers. Before the first tick of a
given second fires, the leader records that second (the *watermark*) on its Lease with a
fenced write, which succeeds only while it still holds the Lease. A new leader reads the
watermark and fires only ticks after it: the tick whose record succeeded but whose send did
not start is the one a crash may lose; no tick is fired twice. Ticks missed during a handover
(after the watermark, within `catchup` seconds) are fired late, with their lateness reported.
Without leadership (a single replica, tests) the watermark lives in memory only.

The loop sleeps on one wake-up event: set by a clock timer at the next due time or by any
source change, so adding, changing or deleting a PingSource takes effect without a restart.
Sends run on `workers` tasks behind a bounded queue.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import math
import zlib
from typing import Any, Protocol

from kevents import informer, pingspec, sender
from sources.ping import clock, events, spec, timetable
from sources.ping import metrics as ping_metrics

logger = logging.getLogger(__name__)

WATERMARK = "ping.kevents.dev/fired-through"
"""Lease annotation: the latest tick second the leader started firing (RFC 3339, UTC)."""


class Leadership(Protocol):
    """What the adapter needs of `kevents.leadership.LeaderElector`."""

    leading: asyncio.Event

    @property
    def is_leader(self) -> bool: ...
    def annotations(self) -> dict[str, str]: ...
    async def record(self, annotations: dict[str, str]) -> bool: ...


def _stamp(tick: float) -> str:
    return datetime.datetime.fromtimestamp(tick, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unstamp(text: str) -> float | None:
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Adapter:
    def __init__(
        self,
        *,
        event_sender: sender.EventSender,
        ping_clock: clock.Clock,
        metrics: ping_metrics.PingMetrics,
        leadership: Leadership | None = None,
        limits: pingspec.Limits = pingspec.DEFAULTS,
        jitter: float = 0.0,
        catchup: float = 60.0,
        lead: float = 1.0,
        workers: int = 64,
        queue_size: int = 100_000,
    ) -> None:
        """`limits` of the shared PingSource rules: production keeps `pingspec.DEFAULTS`, as
        the controller does, so what it marks Ready fires here (tests lower the seconds
        floor); `jitter` (0 s, < 1) spreads each source's ticks by a fixed per-source offset;
        `catchup` (60 s) bounds how old a missed tick may be to still fire after failover;
        `lead` (1 s) is how early the watermark is recorded, so the write never delays a tick;
        `workers` (64) concurrent sends; `queue_size` (100k) ticks wait at most."""
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter must be within [0, 1) seconds")
        self._sender = event_sender
        self._clock = ping_clock
        self._metrics = metrics
        self._leadership = leadership
        self._limits = limits
        self._jitter = jitter
        self._catchup = catchup
        self._lead = lead
        self._workers = workers
        self.jobs: dict[str, spec.Job] = {}
        self._states: dict[str, str] = {}
        self._reported: dict[str, str] = {}
        self.timetable = timetable.Timetable()
        self._queue: asyncio.Queue[tuple[spec.Job, float]] = asyncio.Queue(queue_size)
        self._wake = asyncio.Event()
        self._active = False
        self._recorded = -math.inf
        self.name = "ping scheduler"

    # -- source changes (informer handler) -------------------------------------------------

    async def handle(self, change: informer.Change, obj: dict[str, Any]) -> None:
        source: spec.PingSource = obj  # type: ignore[assignment]
        meta = source.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        if change is informer.Change.DELETE:
            self._forget(key, None)
            logger.info("PingSource %s deleted; it no longer fires.", key)
            return
        try:
            job = spec.job_of(source, limits=self._limits, now=self._clock.now())
        except pingspec.InvalidSpecError as exc:
            self._forget(key, "invalid")
            if self._reported.get(key) == str(exc):
                return  # a status-only update: said already
            self._reported[key] = str(exc)
            logger.error(
                "PingSource %s is invalid and will not fire: %s", key, exc,
                extra={"namespace": meta.get("namespace"), "source_name": meta.get("name")},
            )  # fmt: skip
            return
        if job is None:
            self._forget(key, "no_sink")
            logger.info("PingSource %s waits for its sink (status.sinkUri, Ready).", key)
            return
        previous = self.jobs.get(key)
        self.jobs[key] = job
        self._set_state(key, "scheduled")
        if self._active and (previous is None or previous.schedule != job.schedule):
            self._plan(job, self._clock.time(), {})
            self._wake.set()
        if previous is None or previous.schedule != job.schedule:
            logger.info("PingSource %s scheduled: %s.", key, job.schedule.describe())

    def _forget(self, key: str, state: str | None) -> None:
        if state != "invalid":
            self._reported.pop(key, None)
        self.jobs.pop(key, None)
        self.timetable.cancel(key)
        self._set_state(key, state)
        self._wake.set()

    def _set_state(self, key: str, state: str | None) -> None:
        old = self._states.pop(key, None)
        if old is not None:
            self._metrics.sources.labels(old).dec()
        if state is not None:
            self._states[key] = state
            self._metrics.sources.labels(state).inc()

    # -- planning ---------------------------------------------------------------------------

    def _offset(self, job: spec.Job) -> float:
        return self._jitter * (zlib.crc32(job.uid.encode()) / 2**32)

    def _plan(self, job: spec.Job, after: float, memo: dict[tuple[Any, float], float]) -> None:
        """Schedule `job`'s first tick strictly after `after` (epoch seconds)."""
        key = (job.schedule, after)
        tick = memo.get(key)
        if tick is None:
            moment = datetime.datetime.fromtimestamp(after, datetime.UTC)
            found = job.schedule.next_after(moment)
            tick = found.timestamp() if found is not None else math.inf
            memo[key] = tick
        if tick == math.inf:
            logger.error("PingSource %s has no further fire time.", job.key)
            return
        self.timetable.schedule(job.key, tick, tick + self._offset(job))

    def _activate(self) -> None:
        """Build the timetable when this replica starts leading."""
        now = self._clock.time()
        found = (
            _unstamp(self._leadership.annotations().get(WATERMARK, ""))
            if self._leadership is not None
            else None
        )
        start = now if found is None else max(found, now - self._catchup)
        if found is not None and found < start:
            logger.warning("Ticks between %s and %s were missed (beyond the %.0f s catch-up).",
                           _stamp(found), _stamp(start), self._catchup)  # fmt: skip
            self._metrics.missed.labels("outside_catchup").inc()
        self._recorded = found if found is not None else -math.inf
        memo: dict[tuple[Any, float], float] = {}
        for job in self.jobs.values():
            # Catching up, a source created after the watermark gets no tick from before it.
            created = min(job.created or start, now) if found is not None else start
            self._plan(job, max(start, created), memo)
        self._active = True
        self._metrics.leader.set(1)
        done = f"; ticks through {_stamp(found)} were already fired" if found else ""
        logger.info("Firing %d PingSource(s)%s.", len(self.jobs), done)

    def _deactivate(self) -> None:
        if self._active:
            logger.warning("Not leading any more: stopped firing ticks.")
        self.timetable.clear()
        self._active = False
        self._recorded = -math.inf
        self._metrics.leader.set(0)

    # -- the loop ---------------------------------------------------------------------------

    async def _sleep(self, until: float | None) -> None:
        timer = self._clock.call_at(until, self._wake.set) if until is not None else None
        try:
            await self._wake.wait()
        finally:
            if timer is not None:
                timer.cancel()

    async def _await_leadership(self) -> None:
        assert self._leadership is not None
        self._deactivate()
        if not self._leadership.leading.is_set():
            await self._leadership.leading.wait()
        else:
            await asyncio.sleep(0.1)  # leading but a renewal is overdue: look again soon

    async def _commit(self, tick: float) -> bool:
        if self._leadership is not None:
            if not await self._leadership.record({WATERMARK: _stamp(tick)}):
                return False
        self._recorded = tick
        return True

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for number in range(self._workers):
                group.create_task(self._work(), name=f"ping-sender-{number}")
            await self._loop()

    async def _loop(self) -> None:
        while True:
            if self._leadership is not None and not self._leadership.is_leader:
                await self._await_leadership()
                continue
            if not self._active:
                self._activate()
            self._wake.clear()
            entry = self.timetable.peek()
            now = self._clock.time()
            if entry is None:
                await self._sleep(None)
            elif entry.tick > self._recorded and entry.tick - self._lead > now:
                await self._sleep(entry.tick - self._lead)
            elif entry.tick > self._recorded and not await self._commit(entry.tick):
                await asyncio.sleep(0.1)  # the Lease write failed: retry, or notice the loss
            elif entry.due > now:
                await self._sleep(entry.due)
            else:
                self._fire(now)

    def _fire(self, now: float) -> None:
        if self._leadership is not None and not self._leadership.is_leader:
            return  # lost the Lease while waiting: the recorded tick is the one lost
        memo: dict[tuple[Any, float], float] = {}
        for entry in self.timetable.pop_due(now, self._recorded):
            job = self.jobs[entry.key]
            try:
                self._queue.put_nowait((job, entry.tick))
            except asyncio.QueueFull:
                self._metrics.missed.labels("queue_full").inc()
                logger.error("Send queue full: tick %s of %s dropped.", _stamp(entry.tick),
                             job.key)  # fmt: skip
            self._plan(job, entry.tick, memo)

    async def _work(self) -> None:
        while True:
            job, tick = await self._queue.get()
            try:
                await self._send(job, tick)
            finally:
                self._queue.task_done()

    async def _send(self, job: spec.Job, tick: float) -> None:
        event = events.make(job, tick)
        lateness = self._clock.time() - (tick + self._offset(job))
        self._metrics.lateness.observe(max(0.0, lateness))
        self._metrics.ticks.inc()
        await self._sender.send(event, job.sink, headers={"Kn-Namespace": job.namespace})

    async def drain(self, grace: float) -> None:
        """Wait (up to `grace` s) for queued ticks to be sent."""
        try:
            async with asyncio.timeout(grace):
                await self._queue.join()
        except TimeoutError:
            logger.warning("%d tick(s) still unsent at shutdown.", self._queue.qsize())
