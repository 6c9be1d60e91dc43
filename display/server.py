"""The event-display HTTP server: receive CloudEvents, log them, stream them to a web page.

    POST /                   any CloudEvent (binary or structured): logged, kept, 202
    GET  /                   the live page (server-sent events, no external assets)
    GET  /events             the kept events as JSON (newest last)
    GET  /events/stream      text/event-stream: a `clock` message (the server's time, so the
                             page places events on its chart), the kept events, then every
                             new one
    GET  /health             200 while running
    GET  /healthz            204 while running (Knative's event_display health path, so one
                             probe fits both programs)

Memory is bounded: the last `history` events are kept, and a page that reads too slowly is
disconnected (its browser reconnects and gets the history again) rather than buffered.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import sys
import time
from typing import Any, TextIO

from aiohttp import web
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter

from display import layout, page
from kevents import cloudevent, errors, tracing

logger = logging.getLogger(__name__)


def summary(event: cloudevent.CloudEvent, received: float) -> dict[str, Any]:
    """What the page shows of one event: attributes, extensions, the data text and when it
    arrived (Unix seconds, for the page's events-per-second chart)."""
    context, extensions = layout.attributes(event)
    return {
        "attributes": context,
        "extensions": extensions,
        "data": layout.data_text(event),
        "received": round(received, 3),
    }


class Display:
    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        history: int = 200,
        out: TextIO | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        subscriber_buffer: int = 100,
    ) -> None:
        """`history` (200) events fill a screen many times over and stay within a few MB;
        `subscriber_buffer` (100) events may wait for one slow page before it is dropped."""
        self._kept: collections.deque[dict[str, Any]] = collections.deque(maxlen=history)
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._out = out if out is not None else sys.stdout
        self._buffer = subscriber_buffer
        provider = tracer_provider or trace.NoOpTracerProvider()
        self._tracer = provider.get_tracer("display")
        self.received = Counter(
            "kevents_display_events_received",
            "CloudEvents received by event-display, by result (ok|invalid)",
            ["result"],
            registry=registry,
        )

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        context = tracing.extract(request.headers)
        with self._tracer.start_as_current_span(
            "event-display receive", context=context, kind=trace.SpanKind.SERVER
        ) as span:
            try:
                event = cloudevent.decode(request.headers, body)
            except errors.InvalidEventError as err:
                self.received.labels("invalid").inc()
                span.set_status(trace.StatusCode.ERROR, str(err))
                return web.Response(status=400, text=f"invalid CloudEvent: {err}\n")
            span.set_attribute("cloudevents.event_id", event.get_id())
            span.set_attribute("cloudevents.event_type", event.get_type())
        self.received.labels("ok").inc()
        self._out.write(layout.render(event))
        self._out.flush()
        item = summary(event, time.time())
        self._kept.append(item)
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                self._subscribers.discard(queue)
                queue.get_nowait()  # make room for the close marker
                queue.put_nowait(None)
        return web.Response(status=202)

    async def events(self, request: web.Request) -> web.Response:
        return web.json_response(list(self._kept))

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(self._buffer)
        backlog = list(self._kept)
        self._subscribers.add(queue)
        try:
            clock = json.dumps({"now": time.time()})
            await response.write(f"event: clock\ndata: {clock}\n\n".encode())
            for item in backlog:
                await response.write(_sse(item))
            while True:
                try:
                    live = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if live is None:
                    break
                await response.write(_sse(live))
        except ConnectionResetError:
            pass
        finally:
            self._subscribers.discard(queue)
        return response

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=page.HTML, content_type="text/html")

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/", self.receive)
        app.router.add_get("/", self.index)
        app.router.add_get("/events", self.events)
        app.router.add_get("/events/stream", self.stream)
        app.router.add_get("/health", self.health)
        app.router.add_get("/healthz", self.healthz)
        return app


def _sse(item: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(item, ensure_ascii=False)}\n\n".encode()
