"""Sender metrics on a private registry, in our names and Knative's."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, exposition

from kevents import delivery, metrics


def make() -> tuple[CollectorRegistry, metrics.SenderMetrics]:
    registry = CollectorRegistry()
    return registry, metrics.SenderMetrics(
        registry, namespace="default", name="ping", resource_group="pingsources.sources.knative.dev"
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_results_are_counted_by_outcome_and_class() -> None:
    registry, m = make()
    m.observe(delivery.DeliveryResult(202, 0.02, 1), scheme="http")
    m.observe(delivery.DeliveryResult(202, 0.03, 1), scheme="http")
    m.observe(delivery.DeliveryResult(None, 1.5, 3, "refused"), scheme="http")
    assert value(registry, "kevents_events_sent_total", result="delivered",
                 response_code_class="2xx") == 2  # fmt: skip
    assert value(registry, "kevents_events_sent_total", result="failed",
                 response_code_class="none") == 1  # fmt: skip
    assert value(registry, "kevents_delivery_duration_seconds_count", result="delivered") == 2
    assert value(registry, "kevents_delivery_duration_seconds_bucket", result="failed",
                 le="2.5") == 1  # fmt: skip


def test_knative_names_are_exposed_without_total_suffix() -> None:
    registry, m = make()
    m.observe(delivery.DeliveryResult(202, 0.01, 1), scheme="https")
    m.observe_retry(503, scheme="https")
    m.observe_retry(503, scheme="https")
    text = exposition.generate_latest(registry).decode()
    labels = (
        'event_scheme="https",name="ping",namespace_name="default",'
        'resource_group="pingsources.sources.knative.dev",response_code="{code}",'
        'response_code_class="{cls}"'
    )
    assert "# TYPE event_count untyped" in text
    assert f"event_count{{{labels.format(code=202, cls='2xx')}}} 1.0" in text
    assert f"retry_event_count{{{labels.format(code=503, cls='5xx')}}} 2.0" in text
    assert "event_count_total" not in text
    assert value(registry, "kevents_send_retries_total", response_code_class="5xx") == 2


def test_lost_events_are_counted_by_reason() -> None:
    registry, m = make()
    m.lost("retries_exhausted")
    m.lost("shutdown", 4)
    assert value(registry, "kevents_events_lost_total", reason="retries_exhausted") == 1
    assert value(registry, "kevents_events_lost_total", reason="shutdown") == 4


def test_two_registries_do_not_share_series() -> None:
    registry_a, a = make()
    registry_b, _ = make()
    a.lost("shutdown")
    assert value(registry_b, "kevents_events_lost_total", reason="shutdown") is None
