"""The PingSource rule set: payloads, every problem with its field path, the limits."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kevents import pingspec

NOW = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)

PAYLOADS = {
    "json": ({"data": '{"msg": "hi"}', "contentType": "application/json"},
             b'{"msg": "hi"}', "application/json"),
    "json-with-charset": ({"data": '{"a": 1}', "contentType": "application/json; charset=utf-8"},
                          b'{"a": 1}', "application/json; charset=utf-8"),
    "json-null": ({"data": "null", "contentType": "application/json"}, b"null",
                  "application/json"),
    "text": ({"data": "plain words", "contentType": "text/plain"}, b"plain words", "text/plain"),
    "no-content-type": ({"data": "no type"}, b"no type", None),
    "base64-binary": ({"dataBase64": "AAEC/w==", "contentType": "application/octet-stream"},
                      b"\x00\x01\x02\xff", "application/octet-stream"),
    "base64-json": ({"dataBase64": "eyJhIjogMX0=", "contentType": "application/json"},
                    b'{"a": 1}', "application/json"),
    "cloudevents-json-array": ({"data": "[1]", "contentType": "application/cloudevents+json"},
                               b"[1]", "application/cloudevents+json"),
    "quoted-parameter": ({"data": "x", "contentType": 'text/plain; charset="utf-8"'}, b"x",
                         'text/plain; charset="utf-8"'),
    "type-without-data": ({"contentType": "application/json"}, None, None),
    "empty-strings": ({"data": "", "dataBase64": ""}, None, None),
    "nothing": ({}, None, None),
}  # fmt: skip


@pytest.mark.parametrize(("spec", "body", "content_type"), PAYLOADS.values(), ids=PAYLOADS.keys())
def test_payload_sent_at_each_tick(
    spec: dict[str, Any], body: bytes | None, content_type: str | None
) -> None:
    checked = pingspec.check(spec, now=NOW)
    assert checked.payload == pingspec.Payload(body, content_type)
    assert pingspec.problems(spec, now=NOW) == []


def test_default_schedule_is_every_minute_in_utc() -> None:
    schedule = pingspec.check({}, now=NOW).schedule
    assert (schedule.text, schedule.zone_name) == ("* * * * *", "UTC")
    assert schedule.next_after(NOW) == NOW + datetime.timedelta(minutes=1)


F = pingspec.FieldError
INVALID = {
    "impossible-date": ({"schedule": "0 0 31 2 *"}, [
        F("spec.schedule", "'0 0 31 2 *' never fires: no date matches it within 5 years")]),
    "below-the-floor": ({"schedule": "*/5 * * * * *"}, [
        F("spec.schedule", "'*/5 * * * * *' fires every 5 s; the minimum interval is 10 s")]),
    "every": ({"schedule": "@every 1m"}, [
        F("spec.schedule", "unsupported descriptor @every: use cron fields such as "
                           "'*/5 * * * *'")]),
    "bad-zone": ({"timezone": "Nowhere/Land"}, [
        F("spec.timezone", "provided bad location Nowhere/Land: unknown time zone "
                           "'Nowhere/Land' (use an IANA name like Europe/Madrid or UTC)")]),
    "both-data": ({"data": "x", "dataBase64": "eA=="}, [
        F("spec.data, spec.dataBase64", "expected exactly one, got both")]),
    "bad-base64": ({"dataBase64": "not base64!"}, [
        F("spec.dataBase64", "illegal base64 data: Only base64 data is allowed")]),
    "unpadded-base64": ({"dataBase64": "eA"}, [
        F("spec.dataBase64", "illegal base64 data: Incorrect padding")]),
    "json-array": ({"data": "[1, 2]", "contentType": "application/json"}, [
        F("spec.data", "data is not a JSON object (contentType is application/json)")]),
    "json-broken": ({"data": "{", "contentType": "Application/JSON"}, [
        F("spec.data", "data is not a JSON object (contentType is Application/JSON)")]),
    "base64-json-array": ({"dataBase64": "WzFd", "contentType": "application/json"}, [
        F("spec.dataBase64",
          "decoded data is not a JSON object (contentType is application/json)")]),
    "bad-content-type": ({"data": "x", "contentType": "json"}, [
        F("spec.contentType", "invalid media type 'json': expected type/subtype, e.g. "
                              "application/json")]),
    "header-injection": ({"data": "x", "contentType": "text/plain\r\nX-Evil: 1"}, [
        F("spec.contentType", "invalid media type 'text/plain\\r\\nX-Evil: 1': expected "
                              "type/subtype, e.g. application/json")]),
    "not-a-string": ({"schedule": 5}, [F("spec.schedule", "expected a string, got 5")]),
    "every-problem-at-once": (
        {"schedule": "61 * * * *", "data": "x", "dataBase64": "eA==", "contentType": "a"}, [
            F("spec.schedule", "minute field '61': end of range (61) above maximum (59): 61"),
            F("spec.contentType", "invalid media type 'a': expected type/subtype, e.g. "
                                  "application/json"),
            F("spec.data, spec.dataBase64", "expected exactly one, got both")]),
}  # fmt: skip


@pytest.mark.parametrize(("spec", "expected"), INVALID.values(), ids=INVALID.keys())
def test_every_problem_names_its_field(spec: dict[str, Any], expected: list[F]) -> None:
    assert pingspec.problems(spec, now=NOW) == expected
    with pytest.raises(pingspec.InvalidSpecError) as caught:
        pingspec.check(spec, now=NOW)
    assert caught.value.problems == tuple(expected)
    assert str(caught.value) == "; ".join(f"{p.path}: {p.message}" for p in expected)


def test_path_prefixes_every_field_for_a_webhook() -> None:
    found = pingspec.problems({"timezone": "Mars/Olympus"}, now=NOW, path="spec.template")
    assert [p.path for p in found] == ["spec.template.timezone"]


SIZES = {
    "unlimited-by-default": (pingspec.DEFAULTS, {"data": "x" * 100_000}, []),
    "data-at-the-limit": (pingspec.Limits(data_max_size=4), {"data": "abcd"}, []),
    "data-over": (pingspec.Limits(data_max_size=4), {"data": "abcde"}, [
        F("spec.data", "the data length of 5 bytes exceeds limit set at 4")]),
    "data-counts-utf8-bytes": (pingspec.Limits(data_max_size=4), {"data": "ñññ"}, [
        F("spec.data", "the data length of 6 bytes exceeds limit set at 4")]),
    "base64-counts-the-encoding": (pingspec.Limits(data_max_size=4), {"dataBase64": "eHh4eA=="}, [
        F("spec.dataBase64", "the dataBase64 length of 8 bytes exceeds limit set at 4")]),
    "zero-allows-no-data": (pingspec.Limits(data_max_size=0), {"data": "x"}, [
        F("spec.data", "the data length of 1 bytes exceeds limit set at 0")]),
    "lower-seconds-floor": (pingspec.Limits(min_interval=1), {"schedule": "* * * * * *"}, []),
}  # fmt: skip


@pytest.mark.parametrize(("limits", "spec", "expected"), SIZES.values(), ids=SIZES.keys())
def test_limits(limits: pingspec.Limits, spec: dict[str, Any], expected: list[F]) -> None:
    assert pingspec.problems(spec, now=NOW, limits=limits) == expected
