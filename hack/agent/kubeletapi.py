"""The kubelet API's log endpoint over TLS, so `kubectl logs [-f] [--previous]` works.

The apiserver proxies `pods/log` to `https://<node InternalIP>:<kubeletEndpoint.Port>/
containerLogs/{namespace}/{pod}/{container}` with its kubelet client certificate. We accept
only clients whose certificate the cluster CA signed and whose name is the apiserver's
kubelet client (or a cluster admin).
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import ssl
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)

ALLOWED_NAMES = frozenset({"kube-apiserver-kubelet-client"})
ALLOWED_GROUPS = frozenset({"system:masters"})
FOLLOW_POLL_SECONDS = 0.2

LogsLookup = Callable[[str, str, str], pathlib.Path | None]
"""(namespace, pod, container) -> the container's log folder, or None."""
IsRunning = Callable[[str, str, str], bool]


def _subject(request: web.Request) -> tuple[str, set[str]]:
    peer = request.transport.get_extra_info("peercert") if request.transport else None
    cn = ""
    groups: set[str] = set()
    for rdn in (peer or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                groups.add(value)
    return cn, groups


def tail_lines(data: bytes, lines: int) -> bytes:
    if lines < 0:
        return data
    if lines == 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def make_app(lookup: LogsLookup, running: IsRunning) -> web.Application:
    async def container_logs(request: web.Request) -> web.StreamResponse:
        cn, groups = _subject(request)
        if cn not in ALLOWED_NAMES and not groups & ALLOWED_GROUPS:
            return web.Response(status=403, text=f"Forbidden (user={cn})")
        ns = request.match_info["namespace"]
        pod = request.match_info["pod"]
        container = request.match_info["container"]
        folder = lookup(ns, pod, container)
        if folder is None:
            return web.Response(
                status=404, text=f'container "{container}" in pod "{pod}" not found'
            )
        q = request.query
        previous = q.get("previous") in ("true", "1")
        follow = q.get("follow") in ("true", "1") and not previous
        path = folder / ("previous.log" if previous else "current.log")
        if not path.exists():
            what = "previous terminated" if previous else "current"
            return web.Response(
                status=400, text=f'{what} container "{container}" in pod "{pod}" not found'
            )
        data = path.read_bytes()
        if "tailLines" in q:
            data = tail_lines(data, int(q["tailLines"]))
        if "limitBytes" in q:
            data = data[: int(q["limitBytes"])]
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        await resp.write(data)
        if follow:
            await _follow(resp, path, path.stat().st_size, lambda: running(ns, pod, container))
        await resp.write_eof()
        return resp

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    app.router.add_get("/healthz", healthz)
    return app


async def _follow(
    resp: web.StreamResponse, path: pathlib.Path, offset: int, running: Callable[[], bool]
) -> None:
    """Stream what the process appends until it exits (or its log is rotated)."""
    inode = os.stat(path).st_ino
    while True:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return
        if stat.st_ino != inode:
            return
        if stat.st_size > offset:
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read(stat.st_size - offset)
            offset += len(chunk)
            await resp.write(chunk)
        elif not running():
            return
        await asyncio.sleep(FOLLOW_POLL_SECONDS)


def server_ssl(ca: pathlib.Path, cert: pathlib.Path, key: pathlib.Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def serve(app: web.Application, host: str, port: int, ctx: ssl.SSLContext) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ctx, reuse_address=True)
        await site.start()
        log.info("Serving the kubelet API on https://%s:%d.", host, port)
        await asyncio.Event().wait()
    finally:
        await asyncio.shield(runner.cleanup())
