"""A loopback HTTP proxy in front of the real apiserver that injects faults on request.

The client under test talks plain HTTP to the proxy; the proxy forwards every request to the
real kube-apiserver through `kevents.kubeapi` (authenticated as the test's admin) and relays
the answer, watches line by line. A test scripts what the next lists or watches get instead:

- `GONE`: the watch answers 200 with one `ERROR` event (410 Expired), as the apiserver does
  when the requested resourceVersion was compacted;
- `UNAVAILABLE`: 503 with a `Status` body (an apiserver restarting behind a load balancer);
- `DROP`: the answer starts and the connection is closed mid-body;
- `PASS`: relayed (to script "the first list passes, the next two fail");
- `before` hooks run when a scripted fault is served (e.g. change objects "while the
  watch is down").

`block()` holds every request unanswered (a partitioned client) until `unblock()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from kubernetes_asyncio import client

from kevents import kubeapi


class Fault(enum.Enum):
    PASS = "pass"
    GONE = "gone"
    UNAVAILABLE = "unavailable"
    DROP = "drop"


@dataclass
class Scripted:
    fault: Fault
    before: Callable[[], Awaitable[None]] | None = None


@dataclass
class FaultProxy:
    upstream: kubeapi.KubeApi
    lists: list[Scripted] = field(default_factory=list)
    """What the next list requests (GET of a collection) get, in order; then pass-through."""
    watches: list[Scripted] = field(default_factory=list)
    """What the next watch requests get, in order; then pass-through."""
    served: list[str] = field(default_factory=list)
    """Every request, as `list pass`, `watch gone`, `other pass`, ...: what happened in order."""
    url: str = ""
    _open: asyncio.Event = field(default_factory=asyncio.Event)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._open.set()

    def block(self) -> None:
        """Hold every request from now on without an answer."""
        self._open.clear()

    def unblock(self) -> None:
        self._open.set()

    def api_client(self) -> client.ApiClient:
        """A client of the proxy (plain HTTP on loopback, no credentials of its own)."""
        return client.ApiClient(configuration=client.Configuration(host=self.url))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            return await self._handle(request)
        finally:
            self._handlers.discard(task)

    async def stop(self) -> None:
        """End the requests still held or relayed (watches), so none outlives the test."""
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await self._open.wait()
        watch = request.query.get("watch") == "true"
        kind = "watch" if watch else "list" if request.method == "GET" else "other"
        script = self.watches if watch else self.lists if kind == "list" else []
        if script:
            scripted = script.pop(0)
            self.served.append(f"{kind} {scripted.fault.value}")
            if scripted.before is not None:
                await scripted.before()
            if scripted.fault is not Fault.PASS:
                return await self._fault(request, scripted.fault)
        else:
            self.served.append(f"{kind} pass")
        query = list(request.query.items())
        if watch:
            return await self._relay_watch(request, query)
        body = json.loads(await request.read() or b"null")
        try:
            doc = await self.upstream.request(
                request.method, request.path, body=body, query=query,
                content_type=request.headers.get("Content-Type", "application/json"),
            )  # fmt: skip
        except kubeapi.ApiError as err:
            return _status(err.status, err.reason, err.message)
        return web.json_response(doc)

    async def _relay_watch(
        self, request: web.Request, query: list[tuple[str, str]]
    ) -> web.StreamResponse:
        events = self.upstream.stream(request.path, query, read_timeout=600)
        async with contextlib.aclosing(events):
            try:
                first = await anext(events)
            except kubeapi.ApiError as err:
                return _status(err.status, err.reason, err.message)
            except StopAsyncIteration:
                first = None
            response = web.StreamResponse()
            response.content_type = "application/json"
            await response.prepare(request)
            if first is not None:
                await response.write(json.dumps(first).encode() + b"\n")
                async for event in events:
                    await response.write(json.dumps(event).encode() + b"\n")
            await response.write_eof()
            return response

    async def _fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault is Fault.UNAVAILABLE:
            return _status(503, "ServiceUnavailable", "injected: apiserver unavailable")
        response = web.StreamResponse()
        response.content_type = "application/json"
        if fault is Fault.GONE:
            await response.prepare(request)
            expired = {"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                "reason": "Expired", "message": "injected: too old resource version",
            }}  # fmt: skip
            await response.write(json.dumps(expired).encode() + b"\n")
            await response.write_eof()
            return response
        response.content_length = 4096
        await response.prepare(request)
        await response.write(b'{"kind": "ConfigMapList", "items": [')
        assert request.transport is not None
        request.transport.close()
        return response


def _status(code: int, reason: str, message: str) -> web.Response:
    body: dict[str, Any] = {
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "code": code, "reason": reason, "message": message,
    }  # fmt: skip
    return web.json_response(body, status=code)


@contextlib.asynccontextmanager
async def serve(upstream: kubeapi.KubeApi) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(upstream)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        await proxy.stop()
        await runner.cleanup()
