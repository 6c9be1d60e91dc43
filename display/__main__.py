"""`python -m display`: the example sink (Knative's event_display, plus a live page)."""

from __future__ import annotations

import dataclasses
import logging

from prometheus_client import CollectorRegistry

from display import server
from kevents import logs, metrics, runner, settings, tracing, webserver

logger = logging.getLogger("display")


@dataclasses.dataclass(frozen=True, slots=True)
class DisplaySettings:
    port: int = 8080
    """PORT: where events and the page are served; 8080 like Knative's event_display."""
    metrics_port: int = 9090
    """METRICS_PROMETHEUS_PORT: Prometheus text on /metrics; knative/pkg's default."""
    history: int = 200
    """DISPLAY_HISTORY: events kept for the page and /events; bounded memory."""
    tracing_config: tracing.TracingConfig = dataclasses.field(default_factory=tracing.TracingConfig)
    """K_TRACING_CONFIG: config-tracing data as JSON; tracing off unless configured."""
    log_format: str = "text"
    """KEVENTS_LOG_FORMAT: text, since people read this sink's logs."""

    @classmethod
    def from_env(cls) -> DisplaySettings:
        reader = settings.EnvReader()
        values = cls(
            port=reader.integer("PORT", 8080, minimum=1, maximum=65535),
            metrics_port=reader.integer("METRICS_PROMETHEUS_PORT", 9090, minimum=1, maximum=65535),
            history=reader.integer("DISPLAY_HISTORY", 200, minimum=1, maximum=100_000),
            tracing_config=reader.tracing_config(),
            log_format=reader.choice("KEVENTS_LOG_FORMAT", "text", ("text", "json")),
        )
        reader.check()
        return values


async def main() -> int:
    config = settings.load_or_exit(DisplaySettings.from_env)
    logs.setup("INFO", config.log_format)
    provider = tracing.make_provider(config.tracing_config, service_name="event-display")
    registry = CollectorRegistry()
    display = server.Display(registry=registry, history=config.history, tracer_provider=provider)
    components: list[runner.Service | runner.Component] = [
        webserver.WebServer(
            metrics.make_app(registry), host="0.0.0.0", port=config.metrics_port, name="metrics"
        ),
        webserver.WebServer(display.app(), host="0.0.0.0", port=config.port, name="events"),
    ]
    logger.info("event-display listening on port %d.", config.port)
    try:
        return await runner.Runner(components, grace=5).run()
    finally:
        provider.shutdown()


if __name__ == "__main__":
    runner.main(main)
