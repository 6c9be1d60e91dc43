"""Kubernetes probes: `/health` (liveness) and `/readiness` on the probes port.

`/health` answers 200 while the process serves at all. `/readiness` answers 503 until the
component marks itself ready (e.g. a watcher after its initial list), and again when it
stops (the runner marks not-ready at shutdown so traffic moves away before draining).
"""

from __future__ import annotations

import logging

from aiohttp import web

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


READINESS = web.AppKey("readiness", Readiness)


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _readiness(request: web.Request) -> web.Response:
    readiness = request.app[READINESS]
    if readiness.ready:
        return web.Response(text="ready")
    return web.Response(status=503, text=f"not ready: {readiness.reason}")


def make_app(readiness: Readiness) -> web.Application:
    """An aiohttp app serving `/health` and `/readiness` for `readiness`."""
    app = web.Application()
    app[READINESS] = readiness
    app.router.add_get("/health", _health)
    app.router.add_get("/readiness", _readiness)
    return app
