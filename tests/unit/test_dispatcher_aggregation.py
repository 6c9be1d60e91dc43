"""Worker processes share one metrics endpoint: series summed; the default worker count
follows the pod's CPU limit."""

from __future__ import annotations

import pathlib

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, exposition, parser

from dispatcher import aggregation, workers


def _worker(accepted: int, waited: float, depth: int) -> str:
    registry = CollectorRegistry()
    counter = Counter("k_received", "answers", ["response_code"], registry=registry)
    counter.labels("202").inc(accepted)
    counter.labels("429").inc(1)
    histogram = Histogram("k_sojourn_seconds", "waits", buckets=(0.01, 1.0), registry=registry)
    histogram.observe(waited)
    Gauge("k_queue_depth", "depth", registry=registry).set(depth)
    return exposition.generate_latest(registry).decode()


def test_series_of_every_worker_are_summed() -> None:
    text = aggregation.render(
        aggregation.merge([_worker(3, 0.005, 2), _worker(4, 0.5, 5)])
    ).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in parser.text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples == {
        ("k_received_total", (("response_code", "202"),)): 7.0,
        ("k_received_total", (("response_code", "429"),)): 2.0,
        ("k_sojourn_seconds_bucket", (("le", "0.01"),)): 1.0,
        ("k_sojourn_seconds_bucket", (("le", "1.0"),)): 2.0,
        ("k_sojourn_seconds_bucket", (("le", "+Inf"),)): 2.0,
        ("k_sojourn_seconds_count", ()): 2.0,
        ("k_sojourn_seconds_sum", ()): 0.505,
        ("k_queue_depth", ()): 7.0,
    }
    assert "_created" not in text


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "200000 100000\n"}, 2),
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
    ids=["v2-2-cores", "v2-1.5-rounds-up", "v2-half", "v2-no-limit", "v1-4", "v1-none", "none"],
)
def test_workers_follow_the_cpu_limit(
    tmp_path: pathlib.Path, files: dict[str, str], expected: int | None
) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert workers.cpu_limit(tmp_path) == expected
