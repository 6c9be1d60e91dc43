"""Retry policy: how many times, how long to wait, and which failures deserve another try.

Faithful to Knative's dispatcher (`knative/eventing:pkg/kncloudevents/retries.go`) with two
deliberate improvements: an HTTP `Retry-After` on 429/503 is honoured *by default*, capped by
`retry_after_max` (Knative only does so behind the alpha flag `delivery-retryafter`); and a
Knative `delivery` (present or absent) grants a sink that answers 429/503 *with* a
`Retry-After` up to `DEFAULT_THROTTLE_RETRY` retries even when `delivery.retry` is lower
(Knative's default is 0: the sink's explicit "try again later" is dropped at once).
"""

from __future__ import annotations

import dataclasses
import email.utils
import enum
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypedDict

from kevents import errors

Jitter = Callable[[], float]
"""Returns a uniform sample in [0, 1). `random.Random(seed).random` makes it deterministic."""

DEFAULT_RETRY_AFTER_MAX = 60.0
"""Seconds. A sink asking to wait longer than a minute is treated as asking for a minute: long
enough to let an overloaded sink recover, short enough not to stall a queue for hours."""


DEFAULT_THROTTLE_RETRY = 2
"""Retries a Knative `delivery` grants to throttling answers (429/503 with a Retry-After) when
`retry` is lower: two waits of at most `retry_after_max` each, enough for a sink shedding a
burst, small enough that a sink throttling for good costs a lane at most two minutes."""


class BackoffPolicy(enum.StrEnum):
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


class DeliverySpec(TypedDict, total=False):
    """The raw Knative `delivery` object (`knative/eventing:pkg/apis/duck/v1/delivery_types.go`)."""

    deadLetterSink: dict[str, object]
    retry: int
    timeout: str
    backoffPolicy: str
    backoffDelay: str
    retryAfterMax: str
    format: str


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    retry: int = 0
    """Additional attempts after the first (Knative `delivery.retry`): total = 1 + retry."""
    backoff_policy: BackoffPolicy = BackoffPolicy.EXPONENTIAL
    """Knative's default when `backoffPolicy` is absent."""
    backoff_delay: float | None = None
    """Seconds. None = retry immediately, as Knative does when `backoffDelay` is absent."""
    backoff_cap: float | None = None
    """Seconds. Upper bound of one computed backoff; None = unbounded (Knative has no cap)."""
    jitter: float = 0.0
    """Fraction in [0, 1]: each backoff is scaled by a uniform factor in [1-j, 1+j]. 0 keeps
    Knative's exact timing; sources that fire in bursts set ~0.2 to avoid retry stampedes."""
    timeout: float | None = None
    """Seconds per attempt (Knative `delivery.timeout`, `K_SINK_TIMEOUT`). None = the
    sender's default (`kevents.transport.DEFAULT_ATTEMPT_TIMEOUT`, 60 s)."""
    retry_after_max: float | None = DEFAULT_RETRY_AFTER_MAX
    """Seconds. Cap on an honoured `Retry-After`; None or 0 disables honouring it."""
    throttle_retry: int = 0
    """Retries granted to a 429/503 carrying a valid `Retry-After` when `retry` is lower. 0 here
    (a policy built in code means what it says); `from_delivery_spec` sets
    `DEFAULT_THROTTLE_RETRY`. Without `retry_after_max` nothing is granted."""

    def __post_init__(self) -> None:
        problems = []
        if self.retry < 0:
            problems.append(f"retry must be >= 0, got {self.retry}")
        if self.throttle_retry < 0:
            problems.append(f"throttle_retry must be >= 0, got {self.throttle_retry}")
        for field in ("backoff_delay", "backoff_cap", "timeout", "retry_after_max"):
            value = getattr(self, field)
            if value is not None and value < 0:
                problems.append(f"{field} must not be negative, got {value}")
        if self.timeout == 0:
            problems.append("timeout must be positive (None means no timeout)")
        if not 0.0 <= self.jitter <= 1.0:
            problems.append(f"jitter must be within [0, 1], got {self.jitter}")
        if problems:
            raise errors.ConfigError(problems)

    @property
    def attempts(self) -> int:
        """Total attempts including the first one, for failures other than throttling."""
        return 1 + self.retry

    @property
    def max_attempts(self) -> int:
        """Total attempts when every failure is a throttling answer with a Retry-After."""
        return 1 + max(self.retry, self.throttle_retry if self.retry_after_max else 0)

    def may_retry(
        self, attempts_made: int, status: int | None, retry_after: str | None, now: datetime
    ) -> bool:
        """Whether another attempt follows `attempts_made` attempts, the last failing so."""
        if not self.should_retry(status):
            return False
        if attempts_made < self.attempts:
            return True
        return (
            attempts_made < self.max_attempts
            and status in (429, 503)
            and retry_after is not None
            and parse_retry_after(retry_after, now) is not None
        )

    def backoff(self, attempt_index: int) -> float:
        """Seconds to wait before retry number `attempt_index` (0 = the first retry), no jitter.

        Exactly Knative's formula: exponential = delay * 2**n, linear = delay * n (so the first
        linear retry is immediate), 0 without a delay; then capped by `backoff_cap`.
        """
        if self.backoff_delay is None:
            return 0.0
        if self.backoff_policy is BackoffPolicy.LINEAR:
            wait = self.backoff_delay * attempt_index
        else:
            wait = self.backoff_delay * 2.0 ** min(attempt_index, 64)
        return wait if self.backoff_cap is None else min(wait, self.backoff_cap)

    def wait_before_retry(
        self,
        attempt_index: int,
        *,
        status: int | None,
        retry_after: str | None,
        now: datetime,
        jitter: Jitter,
    ) -> float:
        """Seconds to wait before retry `attempt_index`, after a failure with `status`.

        The jittered backoff, or the capped `Retry-After` of a 429/503 when that is longer.
        """
        wait = self.backoff(attempt_index)
        if wait > 0 and self.jitter > 0:
            wait *= 1.0 + self.jitter * (2.0 * jitter() - 1.0)
            if self.backoff_cap is not None:
                wait = min(wait, self.backoff_cap)
        if self.retry_after_max and status in (429, 503) and retry_after is not None:
            asked = parse_retry_after(retry_after, now)
            if asked is not None:
                wait = max(wait, min(asked, self.retry_after_max))
        return wait

    @classmethod
    def from_delivery_spec(
        cls, spec: DeliverySpec | Mapping[str, object], **overrides: object
    ) -> RetryPolicy:
        """Build a policy from a Knative `delivery` object; every problem is reported at once.

        `overrides` (e.g. `jitter=0.2`) set fields the spec cannot express.
        """
        problems: list[str] = []
        fields: dict[str, object] = {}
        retry = spec.get("retry")
        if retry is not None:
            if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
                problems.append(f"delivery.retry must be an integer >= 0, got {retry!r}")
            else:
                fields["retry"] = retry
        policy = spec.get("backoffPolicy")
        if policy is not None:
            try:
                fields["backoff_policy"] = BackoffPolicy(str(policy))
            except ValueError:
                problems.append(
                    f"delivery.backoffPolicy must be 'linear' or 'exponential', got {policy!r}"
                )
        for key, field in (
            ("backoffDelay", "backoff_delay"),
            ("timeout", "timeout"),
            ("retryAfterMax", "retry_after_max"),
        ):
            raw = spec.get(key)
            if raw is None:
                continue
            try:
                seconds = parse_duration(str(raw))
            except errors.InvalidDurationError as exc:
                problems.append(f"delivery.{key}: {exc.problems[0]}")
                continue
            if key == "timeout" and seconds == 0:
                problems.append("delivery.timeout must not be zero")
                continue
            fields[field] = seconds
        if problems:
            raise errors.ConfigError(problems)
        fields["throttle_retry"] = DEFAULT_THROTTLE_RETRY
        fields.update(overrides)
        return cls(**fields)  # type: ignore[arg-type]

    def should_retry(self, status: int | None) -> bool:
        """Whether a failed attempt deserves another one (Knative's SelectiveRetry)."""
        return should_retry(status)


def delivery_problems(delivery: object, path: str = "spec.delivery") -> list[str]:
    """Every problem of a Knative `delivery` object, each starting with its field path
    (`spec.delivery.backoffDelay: ...`); [] when valid or absent. The one rule set the
    reconcilers, the dispatcher (`RetryPolicy.from_delivery_spec`) and the admission webhook
    share, so an accepted delivery is one the dispatcher can follow."""
    if delivery is None:
        return []
    if not isinstance(delivery, Mapping):
        return [f"{path}: must be an object"]
    try:
        RetryPolicy.from_delivery_spec(delivery)
    except errors.ConfigError as exc:
        return [f"{path}{problem.removeprefix('delivery')}" for problem in exc.problems]
    return []


def should_retry(status: int | None) -> bool:
    """Knative's retry decision for one failed attempt; `None` = no response at all."""
    if status is None:
        return True  # connection refused/reset, DNS, timeout: the sink may come back
    if 200 <= status < 300:
        return False  # success: nothing to retry
    if status >= 500:
        return True  # server-side trouble is usually transient (restart, overload, deploy)
    if status == 404:
        return True  # the sink's route may not be programmed yet (new Service / Trigger)
    if status == 408:
        return True  # request timeout: the server gave up waiting, a new try may be faster
    if status == 409:
        return True  # conflict: the sink's state may change (e.g. concurrent update)
    if status == 429:
        return True  # too many requests: back off (and honour Retry-After) then try again
    return False  # 1xx, 3xx and other 4xx (400, 401, 403, 413...): the same request fails again


def parse_retry_after(value: str, now: datetime) -> float | None:
    """Seconds asked by a `Retry-After` header (delta-seconds or HTTP-date); None if invalid.

    `now` must be timezone-aware; a date in the past means "retry now" (0).
    """
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None  # RFC 9110 dates are GMT; an unqualified date is not one of them
    return max(0.0, (when - now).total_seconds())


_NUMBER = r"(\d+(?:[.,]\d+)?)"
_DURATION = re.compile(
    rf"P(?:{_NUMBER}W)?(?:{_NUMBER}D)?(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?"
)
_UNIT_SECONDS = (7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0)


def parse_duration(text: str) -> float:
    """Parse an ISO-8601 duration such as `PT0.2S`, `PT10S`, `P1D`, `PT1M30.5S` into seconds.

    Strict: designators in order (W D T H M S), a decimal fraction only on the last component,
    no sign. Years and months are rejected because their length in seconds is ambiguous.
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise errors.InvalidDurationError(text, _explain(text))
    parts = match.groups()
    present = [i for i, part in enumerate(parts) if part is not None]
    if not present:
        raise errors.InvalidDurationError(text, "no components (e.g. PT10S, P1D)")
    if text.endswith("T"):
        raise errors.InvalidDurationError(text, "'T' must be followed by hours, minutes or seconds")
    for i in present[:-1]:
        if not parts[i].isdigit():
            raise errors.InvalidDurationError(text, "only the last component may have a fraction")
    return sum(float(parts[i].replace(",", ".")) * _UNIT_SECONDS[i] for i in present)


def _explain(text: str) -> str:
    if not text:
        return "empty string"
    if text.startswith("-"):
        return "negative durations are not allowed"
    if not text.startswith("P"):
        return "must start with 'P' (e.g. PT0.2S)"
    date_part = text[1:].split("T", 1)[0]
    if "Y" in date_part or "M" in date_part:
        return "years and months have no fixed length; use W, D, H, M (after T) or S"
    return "expected P[nW][nD][T[nH][nM][nS]] with designators in that order"
