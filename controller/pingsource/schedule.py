"""PingSource schedule validation with the rules of Knative's parser (robfig/cron with
SecondOptional | Minute | Hour | Dom | Month | Dow | Descriptor), in pure Python.

Accepted: 5 fields (minute hour dom month dow) or 6 with leading seconds; per field `*`,
`?`, numbers, names (JAN-DEC, SUN-SAT, any case), ranges `a-b`, steps `/n`, lists; the
descriptors @yearly @annually @monthly @weekly @daily @midnight @hourly; a `CRON_TZ=Zone `
or `TZ=Zone ` prefix. `@every` is rejected as Knative does. `timezone` is checked as Knative
does, by prefixing `CRON_TZ=<timezone> ` (IANA names through zoneinfo). Errors carry the
field (`schedule` or `timezone`) and robfig's wording.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass

DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
MONTHS = {n: i + 1 for i, n in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
DAYS = {n: i for i, n in enumerate("sun mon tue wed thu fri sat".split())}


@dataclass(frozen=True, slots=True)
class Bounds:
    low: int
    high: int
    names: tuple[tuple[str, int], ...] = ()


SECOND, MINUTE, HOUR = Bounds(0, 59), Bounds(0, 59), Bounds(0, 23)
DOM = Bounds(1, 31)
MONTH = Bounds(1, 12, tuple(MONTHS.items()))
DOW = Bounds(0, 6, tuple(DAYS.items()))


class ScheduleError(ValueError):
    """`field` is `schedule` or `timezone`; the message says what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"invalid value: {message}: spec.{field}")


@dataclass(frozen=True, slots=True)
class Schedule:
    expression: str
    """The schedule without its time zone prefix."""
    timezone: str
    """IANA name, `UTC` when none was given."""


def parse(schedule: str, timezone: str = "") -> Schedule:
    spec = schedule.strip()
    if timezone:
        spec = f"CRON_TZ={timezone} {spec}"
    zone = "UTC"
    if spec.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, spec = spec.partition(" ")
        zone = prefix.split("=", 1)[1]
        _location(zone, "timezone" if timezone else "schedule")
        spec = spec.strip()
    if spec.startswith("@every"):
        raise ScheduleError("schedule", "@every is not supported: use a cron expression")
    if spec.startswith("@"):
        if spec not in DESCRIPTORS:
            raise ScheduleError("schedule", f"unrecognized descriptor: {spec}")
        return Schedule(spec, zone)
    fields = spec.split()
    if len(fields) not in (5, 6):
        raise ScheduleError(
            "schedule", f"expected 5 to 6 fields, found {len(fields)}: [{' '.join(fields)}]"
        )
    bounds = (SECOND, MINUTE, HOUR, DOM, MONTH, DOW)[6 - len(fields) :]
    for text, limits in zip(fields, bounds, strict=True):
        _field(text, limits)
    return Schedule(" ".join(fields), zone)


def _location(name: str, field: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            field, f"provided bad location {name}: unknown time zone {name} ({exc})"
        ) from exc


def _field(text: str, bounds: Bounds) -> None:
    for part in text.split(","):
        _range(part, bounds)


def _range(expr: str, bounds: Bounds) -> None:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    if low_and_high[0] in ("*", "?"):
        start, end = bounds.low, bounds.high
        if len(low_and_high) > 1:
            raise ScheduleError("schedule", f"too many hyphens: {expr}")
    else:
        start = _number(low_and_high[0], bounds)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _number(low_and_high[1], bounds)
        else:
            raise ScheduleError("schedule", f"too many hyphens: {expr}")
    if len(range_and_step) > 2:
        raise ScheduleError("schedule", f"too many slashes: {expr}")
    if len(range_and_step) == 2:
        step = _int(range_and_step[1])
        if step <= 0:
            raise ScheduleError("schedule", f"step of range should be a positive number: {expr}")
    if start < bounds.low:
        raise ScheduleError(
            "schedule", f"beginning of range ({start}) below minimum ({bounds.low}): {expr}"
        )
    if end > bounds.high:
        raise ScheduleError(
            "schedule", f"end of range ({end}) above maximum ({bounds.high}): {expr}"
        )
    if start > end:
        raise ScheduleError("schedule", f"beginning of range ({start}) beyond end of range "
                            f"({end}): {expr}")  # fmt: skip


def _number(text: str, bounds: Bounds) -> int:
    named = dict(bounds.names).get(text.lower())
    return named if named is not None else _int(text)


def _int(text: str) -> int:
    if not text.isdigit():
        raise ScheduleError("schedule", f"failed to parse int from {text}")
    return int(text)
