"""The benches' percentiles: the values their tables print (nearest rank below, NaN for none),
and the dispatcher bench's nanosecond latencies shown in milliseconds."""

from __future__ import annotations

import math

from bench import dispatcher, results


def test_percentile_is_the_nearest_rank_below() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert results.percentile(values, 0.0) == 1.0
    assert results.percentile(values, 0.5) == 3.0
    assert results.percentile(values, 0.99) == 5.0  # rank 4.95 -> the 5th value
    assert results.percentile(values, 1.0) == 5.0


def test_no_values_is_nan_not_an_error() -> None:
    assert math.isnan(results.percentile([], 0.5))


def test_dispatcher_latencies_are_nanoseconds_shown_in_milliseconds() -> None:
    assert dispatcher._ms([3_000_000, 1_000_000, 2_000_000], 0.5) == 2.0
