"""The one cron schedule parser: robfig's syntax and messages, the firing rules, and exact
fire times from an explicit base time (DST as robfig/cron)."""

from __future__ import annotations

import datetime

import pytest

from kevents import schedules

UTC = datetime.UTC
NOW = datetime.datetime(2025, 1, 1, tzinfo=UTC)


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


def fires(expr: str, zone: str, start: str, count: int) -> list[str]:
    parsed = schedules.parse(expr, zone, now=NOW, min_interval=1)
    out, moment = [], at(start)
    for _ in range(count):
        nxt = parsed.next_after(moment)
        assert nxt is not None
        out.append(nxt.astimezone(parsed.zone).isoformat())
        moment = nxt
    return out


@pytest.mark.parametrize(
    ("expr", "zone", "start", "expected"),
    [
        ("*/1 * * * *", "Europe/Madrid", "2025-06-01T12:00:30+02:00",
         ["2025-06-01T12:01:00+02:00", "2025-06-01T12:02:00+02:00"]),
        ("* * * * *", "", "2025-06-01T12:00:00+00:00",
         ["2025-06-01T12:01:00+00:00", "2025-06-01T12:02:00+00:00"]),
        ("CRON_TZ=Asia/Tokyo 0 6 * * ?", "", "2025-06-01T00:00:00+00:00",
         ["2025-06-02T06:00:00+09:00", "2025-06-03T06:00:00+09:00"]),
        ("TZ=America/New_York 0 9 * * MON-FRI", "", "2025-06-06T12:00:00+00:00",
         ["2025-06-06T09:00:00-04:00", "2025-06-09T09:00:00-04:00"]),
        ("*/15 * * * * *", "", "2025-06-01T10:00:50+00:00",
         ["2025-06-01T10:01:00+00:00", "2025-06-01T10:01:15+00:00"]),
        ("@hourly", "Europe/Madrid", "2025-06-01T10:30:00+02:00",
         ["2025-06-01T11:00:00+02:00", "2025-06-01T12:00:00+02:00"]),
        ("@daily", "Europe/Madrid", "2025-06-01T10:30:00+02:00",
         ["2025-06-02T00:00:00+02:00", "2025-06-03T00:00:00+02:00"]),
        ("0 0 1 * 1", "", "2025-08-31T12:00:00+00:00",  # dom OR dow when both restricted
         ["2025-09-01T00:00:00+00:00", "2025-09-08T00:00:00+00:00"]),
        ("0 0 29 2 *", "", "2025-01-01T00:00:00+00:00", ["2028-02-29T00:00:00+00:00"]),
        # Spring forward in Madrid (02:00 -> 03:00 on 2025-03-30): 02:30 does not exist.
        ("30 2 * * *", "Europe/Madrid", "2025-03-29T12:00:00+01:00",
         ["2025-03-31T02:30:00+02:00"]),
        ("0 * * * *", "Europe/Madrid", "2025-03-30T00:30:00+01:00",
         ["2025-03-30T01:00:00+01:00", "2025-03-30T03:00:00+02:00", "2025-03-30T04:00:00+02:00"]),
        # Fall back in Madrid (03:00 -> 02:00 on 2025-10-26): 02:30 happens twice.
        ("30 2 * * *", "Europe/Madrid", "2025-10-25T12:00:00+02:00",
         ["2025-10-26T02:30:00+02:00", "2025-10-26T02:30:00+01:00", "2025-10-27T02:30:00+01:00"]),
        ("30 2 * * *", "Europe/Madrid", "2025-10-26T02:45:00+02:00",  # from the first pass
         ["2025-10-26T02:30:00+01:00"]),
        ("*/30 * * * *", "Europe/Madrid", "2025-10-26T01:40:00+02:00",
         ["2025-10-26T02:00:00+02:00", "2025-10-26T02:30:00+02:00",
          "2025-10-26T02:00:00+01:00", "2025-10-26T02:30:00+01:00", "2025-10-26T03:00:00+01:00"]),
        # Lord Howe falls back by 30 minutes (02:00 -> 01:30 on 2025-04-06).
        ("40 1 * * *", "Australia/Lord_Howe", "2025-04-06T01:45:00+11:00",
         ["2025-04-06T01:40:00+10:30", "2025-04-07T01:40:00+10:30"]),
    ],
    ids=[
        "madrid-every-minute", "utc-default", "cron-tz-prefix", "tz-prefix-weekdays",
        "seconds-field", "hourly-descriptor", "daily-descriptor", "dom-or-dow", "leap-day",
        "spring-gap-skipped", "spring-hourly", "fall-overlap-twice", "fall-second-pass",
        "fall-half-hours", "lord-howe-half-hour",
    ],
)  # fmt: skip
def test_fire_times(expr: str, zone: str, start: str, expected: list[str]) -> None:
    assert fires(expr, zone, start, len(expected)) == expected


def brute_force(parsed: schedules.Schedule, start: datetime.datetime, hours: int) -> list[float]:
    out, moment = [], start
    end = start + datetime.timedelta(hours=hours)
    while moment < end:
        if moment > start and parsed.matches(moment.astimezone(parsed.zone)):
            out.append(moment.timestamp())
        moment += datetime.timedelta(minutes=1)
    return out


@pytest.mark.parametrize("zone", ["Europe/Madrid", "America/New_York", "Australia/Lord_Howe"])
@pytest.mark.parametrize("expr", ["30 2 * * *", "*/7 1-3 * * *", "0,45 * * * *", "59 1 * * *"])
def test_dst_days_match_a_minute_by_minute_scan(expr: str, zone: str) -> None:
    """Every instant whose wall time matches fires, once, across both transitions."""
    parsed = schedules.parse(expr, zone, now=NOW)
    for day in (datetime.datetime(2025, m, d, 6, tzinfo=UTC) for m, d in
                ((3, 29), (3, 8), (4, 5), (10, 25), (11, 1), (10, 4))):  # fmt: skip
        walked, moment = [], day
        end = day + datetime.timedelta(hours=30)
        while (nxt := parsed.next_after(moment)) is not None and nxt < end:
            walked.append(nxt.timestamp())
            moment = nxt
        assert walked == brute_force(parsed, day, 30)


VALID = {
    "five-fields": ("*/1 * * * *", "", "*/1 * * * *", "UTC", "2025-01-01T00:01:00+00:00"),
    "seconds-at-the-floor": ("*/10 * * * * *", "", "*/10 * * * * *", "UTC",
                             "2025-01-01T00:00:10+00:00"),
    "names-any-case": ("0 9 * jan-Mar MON-fri", "", "0 9 * jan-Mar MON-fri", "UTC",
                       "2025-01-01T09:00:00+00:00"),
    "question-mark": ("0 0 ? * 1", "", "0 0 ? * 1", "UTC", "2025-01-06T00:00:00+00:00"),
    "lists-and-steps": ("0,15,30-45/5 * * * *", "", "0,15,30-45/5 * * * *", "UTC",
                        "2025-01-01T00:15:00+00:00"),
    "start-and-step": ("5/20 * * * *", "", "5/20 * * * *", "UTC", "2025-01-01T00:05:00+00:00"),
    # robfig: a day field that is not `*` ORs with the other, even when it is a full range.
    "full-range-or-weekday": ("0 0 1-31 * 1", "", "0 0 1-31 * 1", "UTC",
                              "2025-01-02T00:00:00+00:00"),
    "stepped-dom-or-dow": ("0 0 */2 * 1", "", "0 0 */2 * 1", "UTC",
                           "2025-01-03T00:00:00+00:00"),
    "feb-31-or-monday": ("0 0 31 2 1", "", "0 0 31 2 1", "UTC", "2025-02-03T00:00:00+00:00"),
    "descriptor": ("@hourly", "", "@hourly", "UTC", "2025-01-01T01:00:00+00:00"),
    "timezone-field": ("0 8 * * *", "Europe/Madrid", "0 8 * * *", "Europe/Madrid",
                       "2025-01-01T07:00:00+00:00"),
    "cron-tz-prefix": ("CRON_TZ=Asia/Tokyo 0 8 * * *", "", "0 8 * * *", "Asia/Tokyo",
                       "2025-01-01T23:00:00+00:00"),
    "tz-prefix": ("TZ=America/New_York @daily", "", "@daily", "America/New_York",
                  "2025-01-01T05:00:00+00:00"),
    "extra-spaces": ("  0   8 * * *  ", "", "0 8 * * *", "UTC", "2025-01-01T08:00:00+00:00"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "tz", "written", "zone", "first"), VALID.values(),
                         ids=VALID.keys())  # fmt: skip
def test_accepted(text: str, tz: str, written: str, zone: str, first: str) -> None:
    parsed = schedules.parse(text, tz, now=NOW)
    assert (parsed.text, parsed.zone_name) == (written, zone)
    assert parsed.next_after(NOW) == at(first)


REJECTED = {
    "every": ("@every 1s", "", "schedule", "unsupported descriptor @every"),
    "every-with-zone": ("TZ=UTC @every 1m", "", "schedule", "unsupported descriptor @every"),
    "below-the-floor": ("*/5 * * * * *", "", "schedule",
                        "'*/5 * * * * *' fires every 5 s; the minimum interval is 10 s"),
    "uneven-seconds": ("0,5 * * * * *", "", "schedule", "fires every 5 s"),
    "feb-31": ("0 0 31 2 *", "", "schedule",
               "'0 0 31 2 *' never fires: no date matches it within 5 years"),
    "feb-30-question": ("0 0 30 2 ?", "", "schedule", "never fires"),
    "31st-of-short-months": ("0 0 31 4,6,9,11 *", "", "schedule", "never fires"),
    "unknown-descriptor": ("@fortnightly", "", "schedule", "unrecognized descriptor: @fortnightly"),
    "four-fields": ("* * * *", "", "schedule", "expected 5 to 6 fields, found 4: [* * * *]"),
    "seven-fields": ("* * * * * * *", "", "schedule", "expected 5 to 6 fields, found 7"),
    "empty": ("  ", "", "schedule", "empty schedule"),
    "not-a-number": ("x * * * *", "", "schedule",
                     "minute field 'x': failed to parse int from x"),
    "quartz-L": ("0 0 L * *", "", "schedule", "day-of-month field 'L': failed to parse int"),
    "minute-61": ("61 * * * *", "", "schedule",
                  "minute field '61': end of range (61) above maximum (59): 61"),
    "hour-24": ("0 24 * * *", "", "schedule", "end of range (24) above maximum (23): 24"),
    "dom-0": ("0 0 0 * *", "", "schedule", "beginning of range (0) below minimum (1): 0"),
    "dow-7": ("0 0 * * 7", "", "schedule",
              "day-of-week field '7': end of range (7) above maximum (6): 7"),
    "reversed-range": ("5-1 * * * *", "", "schedule",
                       "beginning of range (5) beyond end of range (1): 5-1"),
    "zero-step": ("*/0 * * * *", "", "schedule", "step of range should be a positive number"),
    "two-slashes": ("1/2/3 * * * *", "", "schedule", "too many slashes: 1/2/3"),
    "two-hyphens": ("1-2-3 * * * *", "", "schedule", "too many hyphens: 1-2-3"),
    "star-range": ("*-5 * * * *", "", "schedule", "too many hyphens: *-5"),
    "unknown-zone": ("0 * * * *", "Mars/Olympus", "timezone",
                     "provided bad location Mars/Olympus: unknown time zone 'Mars/Olympus'"),
    "fixed-offset": ("0 * * * *", "UTC+8", "timezone", "provided bad location UTC+8"),
    "abbreviation": ("0 * * * *", "CST", "timezone", "provided bad location CST"),
    "path": ("0 * * * *", "../etc/passwd", "timezone", "provided bad location"),
    "bad-prefix-zone": ("TZ=Nowhere 0 * * * *", "", "schedule", "provided bad location Nowhere"),
    "zone-twice": ("CRON_TZ=Europe/Madrid * * * * *", "Europe/Paris", "timezone",
                   "give the zone once"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "tz", "field", "message"), REJECTED.values(),
                         ids=REJECTED.keys())  # fmt: skip
def test_rejected(text: str, tz: str, field: str, message: str) -> None:
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.parse(text, tz, now=NOW)
    assert caught.value.field == field
    assert message in caught.value.message


def test_a_lower_floor_admits_every_second() -> None:
    parsed = schedules.parse("* * * * * *", now=NOW, min_interval=1)
    assert parsed.seconds
    assert parsed.next_after(NOW) == at("2025-01-01T00:00:01+00:00")


def test_leap_day_fires_within_the_horizon_only() -> None:
    """robfig's five-year horizon: Feb 29 is found from 2097 (2104 is 7 years away: no)."""
    assert schedules.parse("0 0 29 2 *", now=NOW).next_after(NOW) == at("2028-02-29T00:00:00+00:00")
    late = datetime.datetime(2097, 3, 1, tzinfo=UTC)
    with pytest.raises(schedules.ScheduleError, match="never fires"):
        schedules.parse("0 0 29 2 *", now=late)
