"""PingSource schedules: what is accepted, and exact fire times (DST as robfig/cron)."""

from __future__ import annotations

import datetime

import pytest

from sources.ping import schedule

UTC = datetime.UTC
NOW = datetime.datetime(2025, 1, 1, tzinfo=UTC)


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


def fires(expr: str, zone: str, start: str, count: int) -> list[str]:
    parsed = schedule.parse(expr, zone, now=NOW, min_interval=1)
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


def brute_force(parsed: schedule.Schedule, start: datetime.datetime, hours: int) -> list[float]:
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
    parsed = schedule.parse(expr, zone, now=NOW)
    for day in (datetime.datetime(2025, m, d, 6, tzinfo=UTC) for m, d in
                ((3, 29), (3, 8), (4, 5), (10, 25), (11, 1), (10, 4))):  # fmt: skip
        walked, moment = [], day
        end = day + datetime.timedelta(hours=30)
        while (nxt := parsed.next_after(moment)) is not None and nxt < end:
            walked.append(nxt.timestamp())
            moment = nxt
        assert walked == brute_force(parsed, day, 30)


@pytest.mark.parametrize(
    ("expr", "zone", "message"),
    [
        ("@every 1s", "", "@every schedules are not supported"),
        ("*/5 * * * * *", "", "fires every 5 s; the minimum interval is 10 s"),
        ("0 0 31 2 *", "", "never fires: no date matches it within 5 years"),
        ("0 0 30 2 *", "", "never fires"),
        ("* * * *", "", "expected 5 fields"),
        ("0 0 L * *", "", "day-of-month field 'L'"),
        ("0 0 * * 7", "", "Sunday is 0"),
        ("61 * * * *", "", "invalid schedule"),
        ("@fortnightly", "", "unknown descriptor"),
        ("* * * * *", "UTC+8", "unknown time zone 'UTC+8'"),
        ("* * * * *", "Mars/Olympus", "unknown time zone"),
        ("CRON_TZ=Europe/Madrid * * * * *", "Europe/Paris", "give the zone once"),
        ("", "", "empty schedule"),
    ],
    ids=[
        "every", "below-floor", "feb-31", "feb-30", "four-fields", "quartz-L", "dow-7",
        "minute-61", "unknown-descriptor", "fixed-offset", "unknown-zone", "zone-twice", "empty",
    ],
)  # fmt: skip
def test_rejected(expr: str, zone: str, message: str) -> None:
    with pytest.raises(schedule.ScheduleError) as caught:
        schedule.parse(expr, zone, now=NOW)
    assert message in str(caught.value)


def test_seconds_schedule_at_the_floor_is_accepted() -> None:
    parsed = schedule.parse("*/10 * * * * *", now=NOW)
    assert parsed.seconds and parsed.zone_name == "UTC"
