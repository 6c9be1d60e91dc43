"""An aiohttp application (or low-level `web.Server`) served as a runner component.

Used by the servers that need aiohttp's: receivers and ingresses (GitHub webhook; the channel
ingress as a low-level server), the controller's webhooks, the dispatcher's summed metrics of
its workers. The plain metrics and probes ports are `kevents.opserver`'s.
Port 0 picks a free port; `port` tells which one after `wait_started()` (`opserver.Listener`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiohttp import web

from kevents import opserver

logger = logging.getLogger(__name__)


class WebServer(opserver.Listener):
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
        super().__init__(host=host, port=port, name=name, reuse_port=reuse_port)
        self.app = app
        self.scheme = "https" if ssl_context is not None else "http"
        self._shutdown_timeout = shutdown_timeout
        self._ssl_context = ssl_context

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
            self._serving(int(runner.addresses[0][1]))
            await asyncio.Event().wait()  # until cancelled
        finally:
            await asyncio.shield(runner.cleanup())
            logger.info("Stopped serving %s.", self.name)
