"""A cron schedule in a time zone, parsed with robfig/cron's rules, checked to fire, and its
fire times: the one schedule parser of kevents (reached through `kevents.pingspec`).

Syntax, as robfig/cron with `SecondOptional | Minute | Hour | Dom | Month | Dow | Descriptor`:
5 fields `minute hour day-of-month month day-of-week`, or 6 with seconds first; per field
`*`, `?`, numbers, `a-b` ranges, `/n` steps (`5/15` means `5-max/15`), `,` lists, and in the
month and day-of-week fields JAN-DEC / SUN-SAT in any case; the descriptors `@yearly
@annually @monthly @weekly @daily @midnight @hourly`; a `CRON_TZ=<zone> ` or `TZ=<zone> `
prefix, or the separate `timezone` (IANA names). Messages keep robfig's wording.

Refused although robfig parses it, so that accepted means "will fire": `@every` (as Knative:
`@every 1s` floods sinks, knative/eventing#5584); a seconds field firing more often than
`min_interval` (10 s); a schedule no date matches within five years (`0 0 31 2 *`: robfig's
`Next` gives up and the entry silently never runs); zones other than IANA names (a schedule
without a zone follows UTC, never the pod's zone, knative/eventing#5038).

Fire times are the instants whose wall-clock time in the zone matches the fields, which is
robfig/cron's behaviour across DST: a time inside a spring-forward gap does not exist and is
skipped that day; a time inside a fall-back overlap exists twice and fires twice. croniter
(which runs gap times at the end of the gap instead) only proposes candidates.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import zoneinfo
from collections.abc import Sequence

import croniter

MIN_INTERVAL = 10.0
"""Seconds. A seconds field may not fire more often: ten sources at one tick per second
would already be a steady 10 events/s from one declaration."""
HORIZON_YEARS = 5
"""robfig/cron's `Next` gives up after five years; a schedule matching nothing sooner is
refused instead of never firing."""
DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclasses.dataclass(frozen=True, slots=True)
class _Bounds:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    """Names of low, low+1, ... (months, days)."""


_SECOND, _MINUTE, _HOUR = _Bounds("second", 0, 59), _Bounds("minute", 0, 59), _Bounds("hour", 0, 23)
_DOM = _Bounds("day-of-month", 1, 31)
_DOW = _Bounds("day-of-week", 0, 6, tuple("sun mon tue wed thu fri sat".split()))
_MONTH = _Bounds("month", 1, 12, tuple("jan feb mar apr may jun jul aug sep oct nov dec".split()))
_ONE_SECOND = datetime.timedelta(seconds=1)
_OVERLAP_MAX = datetime.timedelta(hours=3)
"""Longest fall-back overlap looked for (real ones are 30 min to 2 h)."""


class ScheduleError(ValueError):
    """The schedule or its zone is refused. `field` is `schedule` or `timezone` (the spec
    field at fault); `message` says what is wrong, for a user."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


Expanded = Sequence[int | str]


@dataclasses.dataclass(frozen=True, slots=True)
class Schedule:
    text: str
    """The schedule as written, without its zone prefix (whitespace normalised)."""
    zone_name: str
    """IANA zone the fields are read in; `UTC` by default."""
    cron: str
    """The fields as croniter reads them: numbers only, seconds first when `seconds`."""
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

    def describe(self) -> str:
        return f"{self.text!r} in {self.zone_name}"

    def _forward(self, instant: datetime.datetime) -> datetime.datetime | None:
        candidates = croniter.croniter(
            self.cron,
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
        walls = croniter.croniter(self.cron, first_wall - _ONE_SECOND,
                                  second_at_beginning=self.seconds)  # fmt: skip
        wall: datetime.datetime = walls.get_next(datetime.datetime)
        if wall >= first_wall + (before - after):
            return None
        return (wall - after).replace(tzinfo=datetime.UTC)


def _has(values: Expanded, value: int) -> bool:
    return values[0] == "*" or value in values


def load_zone(name: str, field: str = "timezone") -> zoneinfo.ZoneInfo:
    """An IANA zone; fixed offsets like `UTC+8`, `Local` or paths are refused."""
    hint = "use an IANA name like Europe/Madrid or UTC"
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        raise ScheduleError(field, f"provided bad location {name!r}: {hint}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(field, f"provided bad location {name}: unknown time zone "
                                   f"{name!r} ({hint})") from exc  # fmt: skip


def _number(text: str, bounds: _Bounds, expr: str) -> int:
    lowered = text.lower()
    if lowered in bounds.names:
        return bounds.low + bounds.names.index(lowered)
    if not text.isdigit():
        raise ScheduleError("schedule", f"{bounds.name} field {expr!r}: failed to parse int "
                                        f"from {text}")  # fmt: skip
    return int(text)


def _range(expr: str, bounds: _Bounds) -> tuple[set[int], bool]:
    """robfig's `getRange`: the values of one list element, and whether it is a star."""
    where = f"{bounds.name} field {expr!r}"
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    star = low_and_high[0] in ("*", "?")
    if len(range_and_step) > 2:
        raise ScheduleError("schedule", f"{where}: too many slashes: {expr}")
    if len(low_and_high) > (1 if star else 2):
        raise ScheduleError("schedule", f"{where}: too many hyphens: {expr}")
    if star:
        start, end = bounds.low, bounds.high
    else:
        start = _number(low_and_high[0], bounds, expr)
        end = _number(low_and_high[-1], bounds, expr)
    step = 1
    if len(range_and_step) == 2:
        step = _number(range_and_step[1], _Bounds(bounds.name, 0, 0), expr)
        if step <= 0:
            raise ScheduleError("schedule", f"{where}: step of range should be a positive "
                                            f"number: {expr}")  # fmt: skip
        if len(low_and_high) == 1 and not star:
            end = bounds.high  # `N/step` means `N-max/step`
    if start < bounds.low:
        raise ScheduleError("schedule", f"{where}: beginning of range ({start}) below "
                                        f"minimum ({bounds.low}): {expr}")  # fmt: skip
    if end > bounds.high:
        raise ScheduleError("schedule", f"{where}: end of range ({end}) above maximum "
                                        f"({bounds.high}): {expr}")  # fmt: skip
    if start > end:
        raise ScheduleError("schedule", f"{where}: beginning of range ({start}) beyond end "
                                        f"of range ({end}): {expr}")  # fmt: skip
    return set(range(start, end + 1, step)), star and step == 1


def _field(text: str, bounds: _Bounds) -> tuple[list[int], bool]:
    parts = [_range(part, bounds) for part in text.split(",")]
    return sorted(set[int]().union(*(v for v, _ in parts))), any(star for _, star in parts)


def _min_gap(seconds: Sequence[int]) -> float:
    """Shortest gap between fires of a seconds field within a minute (wrap included)."""
    return float(min(b - a for a, b in itertools.pairwise([*seconds, seconds[0] + 60])))


def _cron(fields: list[str], seconds: bool) -> tuple[str, list[list[int]]]:
    """The croniter expression of robfig-parsed fields, and each field's values."""
    bounds = (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _DOW)[0 if seconds else 1 :]
    parsed = [_field(text, limits) for text, limits in zip(fields, bounds, strict=True)]
    texts = [
        "*" if len(values) == limits.high - limits.low + 1 else ",".join(map(str, values))
        for (values, _), limits in zip(parsed, bounds, strict=True)
    ]
    (dom, dom_star), (dow, dow_star) = parsed[-3], parsed[-1]
    if not (dom_star or dow_star) and (len(dom) == 31 or len(dow) == 7):
        texts[-3] = texts[-1] = "*"  # robfig ORs the days; croniter would AND a full range
    return " ".join(texts), [values for values, _ in parsed]


def parse(
    text: str,
    timezone: str = "",
    *,
    now: datetime.datetime,
    min_interval: float = MIN_INTERVAL,
) -> Schedule:
    """The schedule of a `schedule` (+ `timezone`); `ScheduleError` says what is wrong.

    `now` (aware) anchors the check that the schedule fires within `HORIZON_YEARS`.
    """
    body, prefix_zone = " ".join(text.split()), ""
    for prefix in ("CRON_TZ=", "TZ="):
        if body.startswith(prefix):
            prefix_zone, _, body = body[len(prefix) :].partition(" ")
            break
    if prefix_zone and timezone:
        raise ScheduleError("timezone", f"the schedule has a {prefix}{prefix_zone} prefix and "
                                        f"timezone is {timezone}: give the zone once")  # fmt: skip
    zone_name = timezone or prefix_zone or "UTC"
    zone = load_zone(zone_name, "timezone" if timezone else "schedule")
    if not body:
        raise ScheduleError("schedule", "empty schedule: expected 5 cron fields such as "
                                        "'*/5 * * * *'")  # fmt: skip
    if "@every" in body:
        raise ScheduleError("schedule", "unsupported descriptor @every: use cron fields such "
                                        "as '*/5 * * * *'")  # fmt: skip
    if body.startswith("@") and body not in DESCRIPTORS:
        raise ScheduleError("schedule", f"unrecognized descriptor: {body} (known: "
                                        f"{', '.join(DESCRIPTORS)})")  # fmt: skip
    fields = DESCRIPTORS.get(body, body).split()
    if len(fields) not in (5, 6):
        raise ScheduleError("schedule", f"expected 5 to 6 fields, found {len(fields)}: "
                                        f"[{' '.join(fields)}]")  # fmt: skip
    seconds = len(fields) == 6
    cron, values = _cron(fields, seconds)
    if seconds and (gap := _min_gap(values[0])) < min_interval:
        raise ScheduleError("schedule", f"{body!r} fires every {gap:.0f} s; the minimum "
                                        f"interval is {min_interval:.0f} s")  # fmt: skip
    expanded = croniter.croniter(cron, second_at_beginning=seconds).expanded  # numbers only
    schedule = Schedule(body, zone_name, cron, seconds, zone, tuple(expanded))
    if schedule.next_after(now) is None:
        raise ScheduleError("schedule", f"{body!r} never fires: no date matches it within "
                                        f"{HORIZON_YEARS} years")  # fmt: skip
    return schedule
