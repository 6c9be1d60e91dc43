"""A PingSource schedule: cron fields in a time zone, parsed and validated, and its fire times.

Accepted as Knative does (robfig/cron with `SecondOptional | Minute | Hour | Dom | Month |
Dow | Descriptor`): 5 fields `minute hour day-of-month month day-of-week`, or 6 with seconds
first; `*`, `?`, numbers, ranges, steps, lists, three-letter month and day names; the
descriptors `@yearly @annually @monthly @weekly @daily @midnight @hourly`; a `CRON_TZ=<zone>`
or `TZ=<zone>` prefix, or the `timezone` field (IANA names). Rejected on purpose:

- `@every` (knative/eventing#5584: `@every 1s` floods sinks), and seconds-field schedules
  firing more often than `min_interval`;
- schedules no date matches within five years (`0 0 31 2 *`, argo-events#3646), which
  robfig/cron silently never fires;
- a schedule without a zone follows UTC, never the pod's local zone (knative/eventing#5038).

Fire times are the instants whose wall-clock time in the zone matches the fields, which is
robfig/cron's behaviour across DST: a time inside a spring-forward gap does not exist and is
skipped that day; a time inside a fall-back overlap exists twice and fires twice.
croniter (which runs gap times at the end of the gap instead) only proposes candidates.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import zoneinfo
from collections.abc import Sequence

import croniter

DEFAULT_MIN_INTERVAL = 10.0
"""Seconds. Seconds-field schedules may not fire more often: ten sources at one tick per
second would already be a steady 10 events/s from one declaration."""
HORIZON_YEARS = 5
"""robfig/cron's `Next` gives up after five years; a schedule that matches nothing sooner is
rejected instead of never firing silently."""

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NUMERIC = re.compile(r"^[0-9*?/,\-]+$")
_NAMED = re.compile(r"^([0-9*?/,\-]|[A-Za-z]{3})+$")
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELD_NAMES_SECONDS = ("second", *_FIELD_NAMES)
_ONE_SECOND = datetime.timedelta(seconds=1)
_OVERLAP_MAX = datetime.timedelta(hours=3)
"""Longest fall-back overlap looked for (real ones are 30 min to 2 h)."""


class ScheduleError(ValueError):
    """The schedule or time zone is not acceptable; the message says why, for a user."""


Expanded = Sequence[int | str]


@dataclasses.dataclass(frozen=True, slots=True)
class Schedule:
    expression: str
    """The cron fields (descriptor expanded, `?` as `*`), seconds first when `seconds`."""
    zone_name: str
    """IANA zone the fields are read in; `UTC` by default."""
    seconds: bool = False
    zone: zoneinfo.ZoneInfo = dataclasses.field(
        default_factory=lambda: zoneinfo.ZoneInfo("UTC"), compare=False, repr=False
    )
    fields: tuple[Expanded, ...] = dataclasses.field(default=(), compare=False, repr=False)
    """croniter's expanded sets: minute, hour, dom, month, dow[, second]."""

    def matches(self, wall: datetime.datetime) -> bool:
        """Whether a wall-clock time (in `zone`) is one the fields select."""
        minute, hour, dom, month, dow = self.fields[:5]
        second: Expanded = self.fields[5] if self.seconds else (0,)
        if not (_has(second, wall.second) and _has(minute, wall.minute)):
            return False
        if not (_has(hour, wall.hour) and _has(month, wall.month)):
            return False
        dom_ok, dow_ok = _has(dom, wall.day), _has(dow, wall.isoweekday() % 7)
        if dom[0] == "*" or dow[0] == "*":
            return dom_ok and dow_ok
        return dom_ok or dow_ok  # both restricted: either day matches (cron's rule)

    def next_after(self, instant: datetime.datetime) -> datetime.datetime | None:
        """The first fire time strictly after `instant` (aware), in UTC; None if none within
        `HORIZON_YEARS`."""
        found = self._forward(instant)
        repeated = self._second_pass(instant)
        if repeated is not None and (found is None or repeated < found):
            return repeated
        return found

    def _forward(self, instant: datetime.datetime) -> datetime.datetime | None:
        candidates = croniter.croniter(
            self.expression,
            instant.astimezone(self.zone),
            second_at_beginning=self.seconds,
            max_years_between_matches=HORIZON_YEARS,
        )
        for _ in range(64):
            try:
                candidate: datetime.datetime = candidates.get_next(datetime.datetime)
            except croniter.CroniterBadDateError:
                return None
            if candidate <= instant:
                continue  # croniter revisits wall times around a fall-back overlap
            if self.matches(candidate.astimezone(self.zone)):
                return candidate.astimezone(datetime.UTC)
        return None  # pragma: no cover - a DST day never yields 64 gap candidates

    def _offset(self, instant: datetime.datetime) -> datetime.timedelta:
        return instant.astimezone(self.zone).utcoffset() or datetime.timedelta()

    def _second_pass(self, instant: datetime.datetime) -> datetime.datetime | None:
        """The first fire in the repeated wall times of a fall-back within `_OVERLAP_MAX`.

        croniter walks wall time forwards, so from inside (or just before) the first pass of
        an overlap it misses the second pass of earlier wall times (e.g. Lord Howe's 30-min
        shift). Found here directly: the repeated walls, read in the later offset.
        """
        before, after = self._offset(instant), self._offset(instant + _OVERLAP_MAX)
        if after >= before:
            return None
        low, high = instant, instant + _OVERLAP_MAX  # bisect to the transition second
        while high - low > _ONE_SECOND:
            middle = low + (high - low) / 2
            if self._offset(middle) == before:
                low = middle
            else:
                high = middle
        transition = high.replace(microsecond=0)
        if self._offset(transition) == before:
            transition += _ONE_SECOND
        first_wall = (transition + after).replace(tzinfo=None)
        walls = croniter.croniter(
            self.expression, first_wall - _ONE_SECOND, second_at_beginning=self.seconds
        )
        wall: datetime.datetime = walls.get_next(datetime.datetime)
        if wall >= first_wall + (before - after):
            return None
        return (wall - after).replace(tzinfo=datetime.UTC)

    def describe(self) -> str:
        return f"{self.expression!r} in {self.zone_name}"


def _has(values: Expanded, value: int) -> bool:
    return values[0] == "*" or value in values


def split_zone(text: str) -> tuple[str, str]:
    """(`CRON_TZ=`/`TZ=` zone or "", the rest of the schedule)."""
    text = text.strip()
    for prefix in ("CRON_TZ=", "TZ="):
        if text.startswith(prefix):
            zone, _, rest = text[len(prefix) :].partition(" ")
            return zone, rest.strip()
    return "", text


def load_zone(name: str) -> zoneinfo.ZoneInfo:
    """An IANA zone; fixed offsets like `UTC+8` or abbreviations like `CST` are refused."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        raise ScheduleError(f"unknown time zone {name!r}: use an IANA name like Europe/Madrid")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            f"unknown time zone {name!r}: use an IANA name like Europe/Madrid or UTC"
        ) from exc


def _check_fields(fields: list[str]) -> None:
    names = _FIELD_NAMES_SECONDS if len(fields) == 6 else _FIELD_NAMES
    for name, field in zip(names, fields, strict=True):
        pattern = _NAMED if name in ("month", "day-of-week") else _NUMERIC
        if not pattern.match(field):
            raise ScheduleError(
                f"{name} field {field!r}: only numbers, names, '*', '?', '-', '/' and ',' "
                "are allowed"
            )
    if re.search(r"(?<![0-9])7(?![0-9])", fields[-1]):
        raise ScheduleError("day-of-week 7 is not allowed: Sunday is 0")


def _min_gap(seconds: Expanded) -> float:
    """Shortest gap between fires of a seconds field within one minute (wrap included)."""
    if seconds[0] == "*":
        return 1.0
    picked = sorted(int(s) for s in seconds)
    if len(picked) == 1:
        return 60.0
    gaps = [b - a for a, b in zip(picked, picked[1:], strict=False)]
    gaps.append(60 - picked[-1] + picked[0])
    return float(min(gaps))


def parse(
    text: str,
    timezone: str = "",
    *,
    min_interval: float = DEFAULT_MIN_INTERVAL,
    now: datetime.datetime | None = None,
) -> Schedule:
    """Validate a PingSource `schedule` (+ `timezone`); `ScheduleError` says what is wrong.

    `now` (default: the current time) anchors the check that the schedule ever fires.
    """
    prefix_zone, body = split_zone(text)
    if prefix_zone and timezone:
        raise ScheduleError(
            f"schedule has a CRON_TZ=/TZ= prefix ({prefix_zone}) and timezone is set "
            f"({timezone}): give the zone once"
        )
    zone_name = timezone or prefix_zone or "UTC"
    zone = load_zone(zone_name)
    if not body:
        raise ScheduleError("empty schedule: expected 5 cron fields such as '*/5 * * * *'")
    if body.startswith("@every"):
        raise ScheduleError("@every schedules are not supported: use cron fields such as "
                            "'*/5 * * * *'")  # fmt: skip
    if body.startswith("@"):
        if body not in DESCRIPTORS:
            raise ScheduleError(
                f"unknown descriptor {body!r}: use one of {', '.join(sorted(DESCRIPTORS))}"
            )
        body = DESCRIPTORS[body]
    fields = body.split()
    if len(fields) not in (5, 6):
        raise ScheduleError(
            f"expected 5 fields (minute hour day-of-month month day-of-week) or 6 with "
            f"seconds first, got {len(fields)} in {body!r}"
        )
    _check_fields(fields)
    expression = " ".join(f.replace("?", "*") for f in fields)
    seconds = len(fields) == 6
    try:
        expanded = croniter.croniter(expression, second_at_beginning=seconds).expanded
    except (croniter.CroniterError, ValueError) as exc:
        raise ScheduleError(f"invalid schedule {body!r}: {exc}") from exc
    schedule = Schedule(expression, zone_name, seconds, zone, tuple(expanded))
    if seconds:
        gap = _min_gap(expanded[5])
        if gap < min_interval:
            raise ScheduleError(
                f"schedule {body!r} fires every {gap:.0f} s; the minimum interval is "
                f"{min_interval:.0f} s"
            )
    start = now if now is not None else datetime.datetime.now(datetime.UTC)
    if schedule.next_after(start) is None:
        raise ScheduleError(
            f"schedule {body!r} never fires: no date matches it within {HORIZON_YEARS} years"
        )
    return schedule
