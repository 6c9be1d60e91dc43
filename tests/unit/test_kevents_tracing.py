"""Tracing config from config-tracing data, sampling, and W3C + B3 propagation."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kevents import errors, tracing

ENDPOINT = "http://zipkin.istio-system.svc.cluster.local:9411/api/v2/spans"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, tracing.TracingConfig()),
        ({"backend": "none"}, tracing.TracingConfig()),
        (
            {"backend": "zipkin", "zipkin-endpoint": ENDPOINT, "sample-rate": "1"},
            tracing.TracingConfig(tracing.Backend.ZIPKIN, ENDPOINT, 1.0, False),
        ),
        (
            {"enable": "true", "zipkin-endpoint": ENDPOINT},
            tracing.TracingConfig(tracing.Backend.ZIPKIN, ENDPOINT, 0.1, False),
        ),
        ({"debug": "true"}, tracing.TracingConfig(debug=True)),
        ({"sample-rate": 0.25}, tracing.TracingConfig(sample_rate=0.25)),
    ],
    ids=["empty", "none", "zipkin", "legacy-enable", "debug", "json-number"],
)
def test_parse_config(data: dict[str, object], expected: tracing.TracingConfig) -> None:
    assert tracing.parse_config(data) == expected


def test_parse_config_reports_all_problems() -> None:
    with pytest.raises(errors.ConfigError) as caught:
        tracing.parse_config({"backend": "zipkin", "sample-rate": "lots", "debug": "perhaps"})
    assert len(caught.value.problems) == 3
    assert all(p.startswith("K_TRACING_CONFIG: ") for p in caught.value.problems)


@pytest.mark.parametrize(
    ("config", "sampler_name"),
    [
        (tracing.TracingConfig(), "AlwaysOffSampler"),
        (tracing.TracingConfig(debug=True), "AlwaysOnSampler"),
        (
            tracing.TracingConfig(tracing.Backend.ZIPKIN, ENDPOINT, 0.3),
            "ParentBased{root:TraceIdRatioBased{0.3},",
        ),
    ],
    ids=["none", "debug", "zipkin-ratio"],
)
def test_provider_sampler(config: tracing.TracingConfig, sampler_name: str) -> None:
    provider = tracing.make_provider(config, service_name="test")
    try:
        assert provider.sampler.get_description().startswith(sampler_name)
    finally:
        provider.shutdown()


def test_in_memory_exporter_receives_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = tracing.make_provider(
        tracing.TracingConfig(debug=True), service_name="svc", exporter=exporter
    )
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    provider.shutdown()
    [span] = exporter.get_finished_spans()
    assert span.name == "work"
    assert span.resource.attributes["service.name"] == "svc"


def _span_context() -> trace.SpanContext:
    return trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )


def test_inject_writes_w3c_and_b3_headers() -> None:
    context = trace.set_span_in_context(trace.NonRecordingSpan(_span_context()))
    headers: dict[str, str] = {}
    tracing.inject(headers, context)
    assert headers["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert headers["x-b3-traceid"] == "0af7651916cd43dd8448eb211c80319c"
    assert headers["x-b3-spanid"] == "b7ad6b7169203331"
    assert headers["x-b3-sampled"] == "1"


@pytest.mark.parametrize(
    "headers",
    [
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        {"X-B3-TraceId": "0af7651916cd43dd8448eb211c80319c", "X-B3-SpanId": "b7ad6b7169203331",
         "X-B3-Sampled": "1"},
    ],
    ids=["w3c", "b3"],
)  # fmt: skip
def test_extract_accepts_either_format(headers: dict[str, str]) -> None:
    span = trace.get_current_span(tracing.extract(headers))
    assert span.get_span_context().trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert span.get_span_context().span_id == 0xB7AD6B7169203331


def test_extract_prefers_w3c_when_both_present() -> None:
    headers = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "x-b3-traceid": "11111111111111111111111111111111",
        "x-b3-spanid": "2222222222222222",
    }
    span = trace.get_current_span(tracing.extract(headers))
    assert span.get_span_context().trace_id == 0x0AF7651916CD43DD8448EB211C80319C


def test_unsampled_ratio_still_propagates_context() -> None:
    assert isinstance(sampling.ALWAYS_OFF, sampling.Sampler)
    provider = tracing.make_provider(tracing.TracingConfig(), service_name="svc")
    parent = trace.set_span_in_context(trace.NonRecordingSpan(_span_context()))
    with provider.get_tracer("t").start_as_current_span("child", context=parent):
        headers: dict[str, str] = {}
        tracing.inject(headers)
    provider.shutdown()
    assert headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
