"""RetryPolicy: ISO-8601 durations, Knative's retry decision and backoff, Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from kevents import errors, retries

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT0.2S", 0.2),
        ("PT10S", 10.0),
        ("P1D", 86400.0),
        ("PT1M30.5S", 90.5),
        ("PT1H", 3600.0),
        ("P1W", 604800.0),
        ("P1DT2H3M4S", 86400 + 7200 + 180 + 4.0),
        ("PT0S", 0.0),
        ("PT0,5S", 0.5),
        ("PT1.5M", 90.0),
    ],
    ids=lambda v: str(v),
)
def test_parse_duration_valid(text: str, seconds: float) -> None:
    assert retries.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty string"),
        ("10s", "must start with 'P'"),
        ("-PT1S", "negative"),
        ("P", "no components"),
        ("PT", "no components"),
        ("P1DT", "'T' must be followed"),
        ("P1Y", "years and months"),
        ("P2M", "years and months"),
        ("PT1.5M30S", "only the last component"),
        ("PT10S5M", "designators in that order"),
        ("PT1.S", "expected P"),
        ("pt10s", "must start with 'P'"),
    ],
    ids=lambda v: repr(v),
)
def test_parse_duration_invalid_explains(text: str, reason: str) -> None:
    with pytest.raises(errors.InvalidDurationError) as caught:
        retries.parse_duration(text)
    assert reason in caught.value.reason
    assert repr(text) in str(caught.value)
    assert isinstance(caught.value, errors.ConfigError)


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (None, True),
        (200, False),
        (202, False),
        (301, False),
        (304, False),
        (400, False),
        (401, False),
        (403, False),
        (404, True),
        (408, True),
        (409, True),
        (413, False),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (100, False),
    ],
    ids=lambda v: str(v),
)
def test_should_retry_follows_knative(status: int | None, retry: bool) -> None:
    assert retries.should_retry(status) is retry
    assert retries.RetryPolicy().should_retry(status) is retry


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            retries.RetryPolicy(retry=5, backoff_delay=0.2),
            [0.2, 0.4, 0.8, 1.6, 3.2],
        ),
        (
            retries.RetryPolicy(
                retry=4, backoff_policy=retries.BackoffPolicy.LINEAR, backoff_delay=0.5
            ),
            [0.0, 0.5, 1.0, 1.5],
        ),
        (retries.RetryPolicy(retry=3), [0.0, 0.0, 0.0]),
        (
            retries.RetryPolicy(retry=5, backoff_delay=1.0, backoff_cap=5.0),
            [1.0, 2.0, 4.0, 5.0, 5.0],
        ),
    ],
    ids=["exponential", "linear-first-immediate", "no-delay-immediate", "exponential-capped"],
)
def test_backoff_sequence_is_exact(policy: retries.RetryPolicy, expected: list[float]) -> None:
    assert [policy.backoff(n) for n in range(policy.retry)] == pytest.approx(expected)


def test_exponential_backoff_does_not_overflow_for_huge_attempts() -> None:
    policy = retries.RetryPolicy(retry=2000, backoff_delay=0.1, backoff_cap=30.0)
    assert policy.backoff(1999) == 30.0


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, "7", 7.0),
        (503, "7", 7.0),
        (503, "3600", 60.0),
        (429, "Sun, 01 Mar 2026 12:00:10 GMT", 10.0),
        (429, "Sun, 01 Mar 2026 11:59:00 GMT", 0.5),
        (503, "0", 0.5),
        (500, "7", 0.5),
        (429, "soon", 0.5),
        (429, None, 0.5),
    ],
    ids=[
        "429-seconds",
        "503-seconds",
        "capped-at-retry-after-max",
        "http-date",
        "date-in-past-keeps-backoff",
        "zero-keeps-backoff",
        "ignored-for-500",
        "garbage-ignored",
        "absent",
    ],
)
def test_retry_after_is_honoured_by_default_with_cap(
    status: int, header: str | None, expected: float
) -> None:
    policy = retries.RetryPolicy(retry=3, backoff_delay=0.5)
    wait = policy.wait_before_retry(
        0, status=status, retry_after=header, now=NOW, jitter=lambda: 0.5
    )
    assert wait == pytest.approx(expected)


@pytest.mark.parametrize("cap", [None, 0.0], ids=["none", "zero"])
def test_retry_after_can_be_disabled(cap: float | None) -> None:
    policy = retries.RetryPolicy(retry=1, backoff_delay=0.5, retry_after_max=cap)
    wait = policy.wait_before_retry(0, status=429, retry_after="30", now=NOW, jitter=lambda: 0.5)
    assert wait == 0.5


def test_jitter_is_deterministic_with_a_seeded_random() -> None:
    policy = retries.RetryPolicy(retry=3, backoff_delay=1.0, jitter=0.2)
    rng = random.Random(7).random
    waits = [
        policy.wait_before_retry(n, status=500, retry_after=None, now=NOW, jitter=rng)
        for n in range(3)
    ]
    again = random.Random(7).random
    expected = [
        (2.0**n) * (1 + 0.2 * (2 * again() - 1)) for n in range(3)
    ]  # same formula, same draws
    assert waits == pytest.approx(expected)
    assert all(0.8 * 2**n <= w <= 1.2 * 2**n for n, w in enumerate(waits))


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 0.8), (0.5, 1.0), (0.999999, 1.2)])
def test_jitter_bounds(draw: float, expected: float) -> None:
    policy = retries.RetryPolicy(retry=1, backoff_delay=1.0, jitter=0.2)
    wait = policy.wait_before_retry(0, status=None, retry_after=None, now=NOW, jitter=lambda: draw)
    assert wait == pytest.approx(expected, abs=1e-5)


def test_from_delivery_spec_reads_every_field() -> None:
    policy = retries.RetryPolicy.from_delivery_spec(
        {
            "retry": 3,
            "backoffPolicy": "linear",
            "backoffDelay": "PT0.2S",
            "timeout": "PT10S",
            "retryAfterMax": "PT2M",
            "deadLetterSink": {"uri": "http://dls.example"},
        },
        jitter=0.1,
    )
    assert policy == retries.RetryPolicy(
        retry=3,
        backoff_policy=retries.BackoffPolicy.LINEAR,
        backoff_delay=0.2,
        timeout=10.0,
        retry_after_max=120.0,
        jitter=0.1,
        throttle_retry=retries.DEFAULT_THROTTLE_RETRY,
    )
    assert policy.attempts == 4


def test_from_empty_delivery_spec_is_one_attempt_immediate() -> None:
    policy = retries.RetryPolicy.from_delivery_spec({})
    assert policy.attempts == 1
    assert policy.max_attempts == 1 + retries.DEFAULT_THROTTLE_RETRY  # only for Retry-After
    assert policy.backoff_policy is retries.BackoffPolicy.EXPONENTIAL
    assert policy.timeout is None
    assert policy.retry_after_max == retries.DEFAULT_RETRY_AFTER_MAX


def test_from_delivery_spec_reports_every_problem_at_once() -> None:
    with pytest.raises(errors.ConfigError) as caught:
        retries.RetryPolicy.from_delivery_spec(
            {
                "retry": -1,
                "backoffPolicy": "fibonacci",
                "backoffDelay": "0.2s",
                "timeout": "PT0S",
                "retryAfterMax": "P1M",
            }
        )
    problems = caught.value.problems
    assert len(problems) == 5
    text = "\n".join(problems)
    for field in ("retry", "backoffPolicy", "backoffDelay", "timeout", "retryAfterMax"):
        assert f"delivery.{field}" in text


@pytest.mark.parametrize(
    "kwargs",
    [{"retry": -1}, {"backoff_delay": -0.1}, {"timeout": 0.0}, {"jitter": 1.5}],
    ids=["retry", "delay", "timeout", "jitter"],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(errors.ConfigError):
        retries.RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("Sun, 01 Mar 2026 12:01:00 GMT", 60.0),
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),
        ("-3", None),
        ("1.5", None),
        ("", None),
    ],
    ids=lambda v: repr(v),
)
def test_parse_retry_after(header: str, expected: float | None) -> None:
    assert retries.parse_retry_after(header, NOW) == expected
