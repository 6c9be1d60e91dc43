"""`python -m display.step`: a small workflow step for the examples (image `kevents/step`).

The Knative workflow tutorials chain services that each take a CloudEvent, do their part and
answer with the event changed. This one is configured by environment:

    STEP_APPEND       text appended to the event's data (data read as UTF-8 text)
    STEP_EXTENSIONS   extensions set on the answer, `name=value,name=value`
    STEP_FILTER       `attribute=value`: events without it are answered 202 with no event
                      (a Parallel branch's filter; the event is answered as is when it matches
                      and nothing else is configured)
    STEP_FAIL_WHEN    `attribute=value`: such events are answered 500 (a failing step)
    PORT              8080; METRICS_PROMETHEUS_PORT 9090; K_TRACING_CONFIG as event-display

    POST /          a CloudEvent: answered with the changed event (binary mode, 200)
    GET  /events    what was received (newest last) and how it was answered, bounded
    GET  /health    200 while running
    GET  /healthz   204 while running (Knative's event_display path: one probe for both)

Each request is a SERVER span in the caller's trace (service name `step`, or STEP_NAME).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Any

from aiohttp import web
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter

from display import layout
from kevents import cloudevent, errors, logs, metrics, runner, settings, tracing, webserver

logger = logging.getLogger("display.step")


def pairs(raw: str) -> dict[str, str]:
    """`a=1,b=2` -> {"a": "1", "b": "2"}; a ValueError names the bad item."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{item!r} is not name=value")
        out[name.strip()] = value.strip()
    return out


def one_pair(raw: str) -> tuple[str, str] | None:
    found = pairs(raw)
    if len(found) > 1:
        raise ValueError("expected one attribute=value")
    return next(iter(found.items()), None)


@dataclasses.dataclass(frozen=True, slots=True)
class StepSettings:
    name: str = "step"
    """STEP_NAME: the service name of its spans and logs."""
    append: str = ""
    """STEP_APPEND: text appended to the data."""
    extensions: dict[str, str] = dataclasses.field(default_factory=dict)
    """STEP_EXTENSIONS: extensions set on the answer."""
    filter: tuple[str, str] | None = None
    """STEP_FILTER: only events with this attribute value are answered with an event."""
    fail_when: tuple[str, str] | None = None
    """STEP_FAIL_WHEN: events with this attribute value are answered 500."""
    port: int = 8080
    """PORT: as Knative's samples."""
    metrics_port: int = 9090
    """METRICS_PROMETHEUS_PORT: knative/pkg's default."""
    history: int = 200
    """STEP_HISTORY: requests kept for GET /events; bounded memory."""
    tracing_config: tracing.TracingConfig = dataclasses.field(default_factory=tracing.TracingConfig)
    """K_TRACING_CONFIG: config-tracing data as JSON; tracing off unless configured."""

    @classmethod
    def from_env(cls) -> StepSettings:
        reader = settings.EnvReader()
        values = cls(
            name=reader.string("STEP_NAME", "step"),
            append=reader.string("STEP_APPEND", ""),
            extensions=reader.parsed("STEP_EXTENSIONS", pairs, {}),
            filter=reader.parsed("STEP_FILTER", one_pair, None),
            fail_when=reader.parsed("STEP_FAIL_WHEN", one_pair, None),
            port=reader.integer("PORT", 8080, minimum=1, maximum=65535),
            metrics_port=reader.integer("METRICS_PROMETHEUS_PORT", 9090, minimum=1, maximum=65535),
            history=reader.integer("STEP_HISTORY", 200, minimum=1, maximum=100_000),
            tracing_config=reader.tracing_config(),
        )
        reader.check()
        return values


def _has(event: cloudevent.CloudEvent, wanted: tuple[str, str] | None) -> bool:
    if wanted is None:
        return False
    value = event.get_attributes().get(wanted[0])
    return value is not None and str(value) == wanted[1]


def answer(config: StepSettings, event: cloudevent.CloudEvent) -> tuple[int, Any]:
    """(status, event to answer with or None) for one received event."""
    if _has(event, config.fail_when):
        return 500, None
    if config.filter is not None and not _has(event, config.filter):
        return 202, None
    text = layout.data_text(event) + config.append
    changed = cloudevent.apply_overrides(event, config.extensions)
    attributes = dict(changed.get_attributes())
    attributes.setdefault("datacontenttype", "text/plain")
    if config.append and attributes["datacontenttype"] == "application/json":
        attributes["datacontenttype"] = "text/plain"  # the appended text makes it text
    reply = cloudevent.CloudEvent(attributes, text.encode() if text else None)
    if "time" not in attributes:
        reply.get_attributes().pop("time", None)  # the SDK would invent one
    return 200, reply


class Step:
    def __init__(
        self,
        config: StepSettings,
        *,
        registry: CollectorRegistry,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.config = config
        self._kept: collections.deque[dict[str, Any]] = collections.deque(maxlen=config.history)
        self._tracer = (tracer_provider or trace.NoOpTracerProvider()).get_tracer("display.step")
        self.answered = Counter(
            "kevents_step_requests",
            "Events received by the step, by HTTP status answered",
            ["code"],
            registry=registry,
        )

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._tracer.start_as_current_span(
            f"{self.config.name} receive",
            context=tracing.extract(request.headers),
            kind=trace.SpanKind.SERVER,
        ) as span:
            try:
                event = cloudevent.decode(request.headers, body)
            except errors.InvalidEventError as err:
                self.answered.labels("400").inc()
                return web.Response(status=400, text=f"invalid CloudEvent: {err}\n")
            status, reply = answer(self.config, event)
            span.set_attribute("cloudevents.event_id", event.get_id())
            span.set_attribute("http.response.status_code", status)
        self.answered.labels(str(status)).inc()
        context, extensions = layout.attributes(event)
        self._kept.append({"attributes": context, "extensions": extensions,
                           "data": layout.data_text(event), "status": status})  # fmt: skip
        logger.info("Event %s answered %d.", event.get_id(), status,
                    extra={"event_id": event.get_id()})  # fmt: skip
        if reply is None:
            return web.Response(status=status)
        message = cloudevent.encode(reply)
        return web.Response(status=status, headers=dict(message.headers), body=message.body)

    async def events(self, request: web.Request) -> web.Response:
        return web.json_response(list(self._kept))

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/", self.receive)
        app.router.add_get("/events", self.events)
        app.router.add_get("/health", self.health)
        app.router.add_get("/healthz", self.healthz)
        return app


async def main() -> int:
    config = settings.load_or_exit(StepSettings.from_env)
    logs.setup("INFO", "text")
    provider = tracing.make_provider(config.tracing_config, service_name=config.name)
    registry = CollectorRegistry()
    step = Step(config, registry=registry, tracer_provider=provider)
    components: list[runner.Service | runner.Component] = [
        webserver.WebServer(
            metrics.make_app(registry), host="0.0.0.0", port=config.metrics_port, name="metrics"
        ),
        webserver.WebServer(step.app(), host="0.0.0.0", port=config.port, name="events"),
    ]
    logger.info("Step %s listening on port %d.", config.name, config.port)
    try:
        return await runner.Runner(components, grace=5).run()
    finally:
        provider.shutdown()


if __name__ == "__main__":
    runner.main(main)
