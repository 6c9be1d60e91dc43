"""OpenTelemetry tracing configured from Knative's `config-tracing` data.

- `parse_config()` reads the `config-tracing` keys (`backend`, legacy `enable`,
  `zipkin-endpoint`, `sample-rate`, `debug`) into a frozen `TracingConfig`.
- `make_provider()` builds a `TracerProvider` (never installed globally): Zipkin JSON v2 via a
  `BatchSpanProcessor`, or any exporter a test passes in (e.g. `InMemorySpanExporter`).
- `PROPAGATOR` injects W3C `traceparent` *and* B3 multi-headers, and extracts either
  (W3C wins when both are present, as Knative's ingress does).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, MutableMapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators import composite
from opentelemetry.propagators.b3 import B3MultiFormat
from opentelemetry.sdk import resources
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import export, sampling
from opentelemetry.trace.propagation import tracecontext

from kevents import errors

DEFAULT_SAMPLE_RATE = 0.1
"""Knative's default: keep one trace in ten, enough to see flows without flooding Zipkin."""

# Extraction runs in list order and later propagators overwrite earlier ones: B3 first, so a
# W3C traceparent, when present, wins.
PROPAGATOR = composite.CompositePropagator(
    [B3MultiFormat(), tracecontext.TraceContextTextMapPropagator()]
)


class Backend(enum.StrEnum):
    NONE = "none"
    ZIPKIN = "zipkin"


@dataclasses.dataclass(frozen=True, slots=True)
class TracingConfig:
    backend: Backend = Backend.NONE
    """`none` by default, like Knative: tracing costs nothing until someone configures it."""
    zipkin_endpoint: str | None = None
    """Zipkin v2 spans URL, e.g. http://zipkin.istio-system.svc.cluster.local:9411/api/v2/spans."""
    sample_rate: float = DEFAULT_SAMPLE_RATE
    """Fraction of new root traces recorded, 0..1; a sampled parent is always followed."""
    debug: bool = False
    """Record every trace regardless of `sample_rate` (Knative's meaning of `debug`)."""


def _parse_bool(value: object) -> bool | None:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    return None


def parse_config(
    data: Mapping[str, object], *, variable: str = "K_TRACING_CONFIG"
) -> TracingConfig:
    """Parse `config-tracing` data; all problems are reported together in one `ConfigError`."""
    problems: list[str] = []
    backend = Backend.NONE
    raw_backend = data.get("backend")
    if raw_backend is not None and str(raw_backend).strip():
        try:
            backend = Backend(str(raw_backend).strip().lower())
        except ValueError:
            problems.append(f"{variable}: backend must be 'none' or 'zipkin', got {raw_backend!r}")
    elif _parse_bool(data.get("enable", "false")):
        backend = Backend.ZIPKIN  # legacy `enable: "true"` meant zipkin
    endpoint = str(data.get("zipkin-endpoint", "")).strip() or None
    if backend is Backend.ZIPKIN and endpoint is None:
        problems.append(f"{variable}: zipkin-endpoint is required when the backend is zipkin")
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        problems.append(f"{variable}: zipkin-endpoint must be an http(s) URL, got {endpoint!r}")
    sample_rate = DEFAULT_SAMPLE_RATE
    raw_rate = data.get("sample-rate")
    if raw_rate is not None and str(raw_rate).strip():
        try:
            sample_rate = float(str(raw_rate))
        except ValueError:
            sample_rate = -1.0
        if not 0.0 <= sample_rate <= 1.0:
            problems.append(f"{variable}: sample-rate must be a number in [0, 1], got {raw_rate!r}")
    debug = _parse_bool(data.get("debug", "false"))
    if debug is None:
        problems.append(f"{variable}: debug must be true or false, got {data.get('debug')!r}")
    if problems:
        raise errors.ConfigError(problems)
    return TracingConfig(backend, endpoint, sample_rate, bool(debug))


def make_provider(
    config: TracingConfig,
    *,
    service_name: str,
    exporter: export.SpanExporter | None = None,
) -> sdk_trace.TracerProvider:
    """A `TracerProvider` for `config`; pass `exporter` (tests) to export synchronously to it.

    Call `provider.shutdown()` at exit so batched spans are flushed.
    """
    if config.debug:
        sampler: sampling.Sampler = sampling.ALWAYS_ON
    elif exporter is None and config.backend is Backend.NONE:
        sampler = sampling.ALWAYS_OFF  # context still propagates, nothing is recorded
    else:
        sampler = sampling.ParentBased(sampling.TraceIdRatioBased(config.sample_rate))
    provider = sdk_trace.TracerProvider(
        sampler=sampler,
        resource=resources.Resource.create({resources.SERVICE_NAME: service_name}),
    )
    if exporter is not None:
        provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    elif config.backend is Backend.ZIPKIN:
        from opentelemetry.exporter.zipkin.json import ZipkinExporter

        zipkin = ZipkinExporter(endpoint=config.zipkin_endpoint)
        provider.add_span_processor(export.BatchSpanProcessor(zipkin))
    return provider


def records(provider: trace.TracerProvider | None) -> bool:
    """Whether spans from `provider` can ever be recorded (not none, no-op or ALWAYS_OFF)."""
    if provider is None or isinstance(provider, trace.NoOpTracerProvider):
        return False
    return not (
        isinstance(provider, sdk_trace.TracerProvider) and provider.sampler is sampling.ALWAYS_OFF
    )


def inject(headers: MutableMapping[str, str], context: otel_context.Context | None = None) -> None:
    """Write `traceparent`/`tracestate` and `X-B3-*` headers for `context` (default: current).

    Nothing to write without a valid span context: checked first, because the propagators'
    own checks cost microseconds per request on the forwarding hot path.
    """
    if not trace.get_current_span(context).get_span_context().is_valid:
        return
    PROPAGATOR.inject(headers, context=context)


def extract(headers: Mapping[str, str]) -> otel_context.Context:
    """The trace context carried by incoming headers (W3C preferred, B3 accepted)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    return PROPAGATOR.extract(lowered)
