"""Kubernetes probes: `/health` (liveness) and `/readiness` on the probes port.

`/health` answers 200 while the process serves at all. `/readiness` answers 503 until the
component marks itself ready (e.g. a watcher after its initial list), and again when it
stops (the runner marks not-ready at shutdown so traffic moves away before draining).
"""

from __future__ import annotations

import functools
import logging

from kevents import opserver

logger = logging.getLogger(__name__)


class Readiness:
    """A readiness flag with a reason, shared by the component and the probes app."""

    def __init__(self) -> None:
        self._ready = False
        self._reason = "starting"

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def reason(self) -> str:
        return self._reason

    def set_ready(self) -> None:
        if not self._ready:
            logger.info("Component is ready.")
        self._ready = True
        self._reason = "ready"

    def set_not_ready(self, reason: str) -> None:
        if self._ready:
            logger.info("Component is no longer ready: %s.", reason)
        self._ready = False
        self._reason = reason


def _health() -> opserver.Answer:
    return opserver.Answer(200, b"ok")


def _readiness(readiness: Readiness) -> opserver.Answer:
    if readiness.ready:
        return opserver.Answer(200, b"ready")
    return opserver.Answer(503, f"not ready: {readiness.reason}".encode())


def routes(readiness: Readiness) -> dict[str, opserver.Route]:
    """`/health` and `/readiness` for `readiness` (served by `kevents.endpoints`)."""
    return {"/health": _health, "/readiness": functools.partial(_readiness, readiness)}
