"""An aiohttp application (or low-level `web.Server`) served as a runner component.

Used for the metrics and probes ports, and by receivers (GitHub webhook; the channel ingress
as a low-level server, `async def run()`).
Port 0 picks a free port; `port` tells which one after `wait_started()`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiohttp import web

logger = logging.getLogger(__name__)


class WebServer:
    def __init__(
        self,
        app: web.Application | web.Server,
        *,
        host: str,
        port: int,
        name: str = "http",
        shutdown_timeout: float = 5.0,
        reuse_port: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`ssl_context` serves HTTPS (the controller's admission webhook); the context may
        be given a new certificate while serving: new connections use it."""
        self.app = app
        self.host = host
        self.name = name
        self._requested_port = port
        self._shutdown_timeout = shutdown_timeout
        self._reuse_port = reuse_port
        self._ssl_context = ssl_context
        self._bound_port: int | None = None
        self._started = asyncio.Event()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0); only valid once started."""
        if self._bound_port is None:
            raise RuntimeError(f"{self.name} server has not started")
        return self._bound_port

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def wait_started(self) -> None:
        await self._started.wait()

    async def run(self) -> None:
        """Serve until cancelled, then close listeners and in-flight requests."""
        runner: web.BaseRunner
        if isinstance(self.app, web.Server):
            runner = web.ServerRunner(
                self.app, handle_signals=False, shutdown_timeout=self._shutdown_timeout
            )
        else:
            runner = web.AppRunner(
                self.app,
                access_log=None,
                handle_signals=False,
                shutdown_timeout=self._shutdown_timeout,
            )
        await runner.setup()
        try:
            site = web.TCPSite(
                runner,
                self.host,
                self._requested_port,
                reuse_port=self._reuse_port or None,
                ssl_context=self._ssl_context,
            )
            await site.start()
            self._bound_port = int(runner.addresses[0][1])
            logger.info(
                "Serving %s on %s:%d.", self.name, self.host, self._bound_port,
                extra={"component": self.name},
            )  # fmt: skip
            self._started.set()
            await asyncio.Event().wait()  # until cancelled
        finally:
            await asyncio.shield(runner.cleanup())
            logger.info("Stopped serving %s.", self.name)
