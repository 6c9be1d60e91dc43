"""The shared runner: start components in order, stop them in reverse, drain within a grace.

A component is anything with `async def run()` that runs until cancelled (or a `Service`
spelling out its hooks). Optional hooks found on a component object:

- `async def wait_started()`: the runner waits for it before starting the next component
  (metrics/probes bound -> sender open -> watchers listed -> workers).
- `async def stop()`: graceful stop on shutdown (e.g. `SendQueue.stop` drains); afterwards
  the component's task is cancelled if it is still running.

SIGTERM/SIGINT (or `request_stop()`) mark the process not ready, then stop the components
from last to first, all within `grace` seconds. Exit code: 0 after a clean drain, 1 when a
component failed, a stop hook failed or the grace period ran out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn, Protocol, runtime_checkable

from kevents import allocator, errors, probes

logger = logging.getLogger(__name__)

Hook = Callable[[], Coroutine[Any, Any, None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Service:
    name: str
    run: Hook
    started: Hook | None = None
    stop: Hook | None = None


@runtime_checkable
class Component(Protocol):
    async def run(self) -> None: ...


@runtime_checkable
class _AnnouncesStart(Protocol):
    async def wait_started(self) -> None: ...


@runtime_checkable
class _Stoppable(Protocol):
    async def stop(self) -> None: ...


def as_service(component: Service | Component, name: str | None = None) -> Service:
    """Wrap a component object, picking up its optional `wait_started`/`stop` hooks."""
    if isinstance(component, Service):
        return component
    return Service(
        name=name or getattr(component, "name", None) or type(component).__name__,
        run=component.run,
        started=component.wait_started if isinstance(component, _AnnouncesStart) else None,
        stop=component.stop if isinstance(component, _Stoppable) else None,
    )


class Runner:
    def __init__(
        self,
        components: Sequence[Service | Component],
        *,
        grace: float = 25.0,
        start_timeout: float = 120.0,
        readiness: probes.Readiness | None = None,
        handle_signals: bool = True,
    ) -> None:
        """`grace` (25 s) fits inside Kubernetes' default 30 s terminationGracePeriodSeconds;
        `start_timeout` (120 s) bounds a component that never reports started."""
        self._services = [as_service(c) for c in components]
        self._grace = grace
        self._start_timeout = start_timeout
        self._readiness = readiness
        self._handle_signals = handle_signals
        self._stop = asyncio.Event()
        self._stopping = False

    def request_stop(self) -> None:
        """Begin a graceful shutdown (what SIGTERM does)."""
        if self._stop.is_set():
            logger.info("Shutdown already in progress.")
        else:
            logger.info("Shutdown requested.")
        self._stop.set()

    async def run(self) -> int:
        """Run every component until stopped; returns the process exit code."""
        loop = asyncio.get_running_loop()
        signals = self._install_signals(loop)
        running: list[tuple[Service, asyncio.Task[None]]] = []
        clean = failed = False
        try:
            async with asyncio.TaskGroup() as group:
                for service in self._services:
                    if self._stop.is_set():
                        break
                    logger.info("Starting %s.", service.name)
                    task = group.create_task(self._guard(service), name=service.name)
                    running.append((service, task))
                    if service.started is not None and not await self._wait_started(group, service):
                        break
                else:
                    logger.info("All %d components started.", len(running))
                await self._stop.wait()
                clean = await self._shutdown(running)
        except* Exception as failure:
            failed = True
            for exc in failure.exceptions:
                logger.error("Component failed: %s", exc, exc_info=exc)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
        if failed:
            return 1
        logger.info("Stopped %s.", "cleanly" if clean else "with errors")
        return 0 if clean else 1

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        if not self._handle_signals:
            return []
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError):  # not the main thread / platform
                continue
            installed.append(sig)
        return installed

    async def _guard(self, service: Service) -> None:
        await service.run()
        if not self._stopping:
            logger.warning("%s stopped on its own; shutting everything down.", service.name)
            self._stop.set()

    async def _wait_started(self, group: asyncio.TaskGroup, service: Service) -> bool:
        assert service.started is not None
        started = group.create_task(service.started(), name=f"{service.name}-started")
        stopping = group.create_task(self._stop.wait(), name=f"{service.name}-start-abort")
        try:
            done, _ = await asyncio.wait(
                {started, stopping},
                timeout=self._start_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            started.cancel()
            stopping.cancel()
        if started in done:
            return True
        if stopping in done:
            return False
        raise errors.KeventsError(
            f"{service.name} did not start within {self._start_timeout:.0f} s"
        )

    async def _shutdown(self, running: list[tuple[Service, asyncio.Task[None]]]) -> bool:
        self._stopping = True
        if self._readiness is not None:
            self._readiness.set_not_ready("shutting down")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._grace
        clean = True
        for service, task in reversed(running):
            if task.done():
                continue
            logger.info("Stopping %s.", service.name)
            if service.stop is not None:
                try:
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        await service.stop()
                except TimeoutError:
                    clean = False
                    logger.error("%s did not stop within the grace period.", service.name)
                except Exception:
                    clean = False
                    logger.exception("Stopping %s failed.", service.name)
            task.cancel()
            await asyncio.wait([task], timeout=max(1.0, deadline - loop.time()))
            if not task.done():
                clean = False
                logger.error("%s ignored cancellation.", service.name)
        return clean


def main(entry: Callable[[], Coroutine[Any, Any, int]]) -> NoReturn:
    """Process entry point: run `entry()` on uvloop and exit with the code it returns (the C
    allocator tuned first: `kevents.allocator`)."""
    import uvloop

    allocator.tune()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop_runner:
        code = loop_runner.run(entry())
    sys.exit(code)
