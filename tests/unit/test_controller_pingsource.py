"""Pure parts of the PingSource reconciler: schedule, timezone and data validation."""

from __future__ import annotations

import pytest

from controller.pingsource import payload, reconciler, schedule

VALID = {
    "five-fields": ("*/1 * * * *", "", "*/1 * * * *", "UTC"),
    "seconds-field": ("30 */5 * * * *", "", "30 */5 * * * *", "UTC"),
    "names-any-case": ("0 9 * jan-Mar MON-fri", "", "0 9 * jan-Mar MON-fri", "UTC"),
    "question-mark": ("0 0 ? * 1", "", "0 0 ? * 1", "UTC"),
    "lists-and-steps": ("0,15,30-45/5 * * * *", "", "0,15,30-45/5 * * * *", "UTC"),
    "descriptor": ("@hourly", "", "@hourly", "UTC"),
    "timezone-field": ("0 8 * * *", "Europe/Madrid", "0 8 * * *", "Europe/Madrid"),
    "cron-tz-prefix": ("CRON_TZ=Asia/Tokyo 0 8 * * *", "", "0 8 * * *", "Asia/Tokyo"),
    "tz-prefix": ("TZ=America/New_York @daily", "", "@daily", "America/New_York"),
    "extra-spaces": ("  0   8 * * *  ", "", "0 8 * * *", "UTC"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "tz", "expression", "zone"), VALID.values(), ids=VALID.keys())
def test_valid_schedules(text: str, tz: str, expression: str, zone: str) -> None:
    assert schedule.parse(text, tz) == schedule.Schedule(expression, zone)


INVALID = {
    "every": ("@every 1s", "", "schedule", "@every is not supported"),
    "unknown-descriptor": ("@fortnightly", "", "schedule", "unrecognized descriptor: @fortnightly"),
    "too-few": ("* * * *", "", "schedule", "expected 5 to 6 fields, found 4: [* * * *]"),
    "too-many": ("* * * * * * *", "", "schedule", "expected 5 to 6 fields, found 7"),
    "not-a-number": ("x * * * *", "", "schedule", "failed to parse int from x"),
    "above-maximum": ("0 24 * * *", "", "schedule", "end of range (24) above maximum (23): 24"),
    "below-minimum": ("0 0 0 * *", "", "schedule", "beginning of range (0) below minimum (1): 0"),
    "dow-seven": ("0 0 * * 7", "", "schedule", "end of range (7) above maximum (6): 7"),
    "reversed-range": ("5-1 * * * *", "", "schedule", "beginning of range (5) beyond end"),
    "zero-step": ("*/0 * * * *", "", "schedule", "step of range should be a positive number"),
    "two-slashes": ("1/2/3 * * * *", "", "schedule", "too many slashes: 1/2/3"),
    "two-hyphens": ("1-2-3 * * * *", "", "schedule", "too many hyphens: 1-2-3"),
    "bad-timezone": ("0 * * * *", "Mars/Olympus", "timezone", "provided bad location Mars/Olympus"),
    "bad-prefix-zone": ("TZ=Nowhere 0 * * * *", "", "schedule", "provided bad location Nowhere"),
    "fixed-offset": ("0 * * * *", "UTC+8", "timezone", "provided bad location UTC+8"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "tz", "field", "message"), INVALID.values(), ids=INVALID.keys())
def test_invalid_schedules(text: str, tz: str, field: str, message: str) -> None:
    with pytest.raises(schedule.ScheduleError) as caught:
        schedule.parse(text, tz)
    assert caught.value.field == field
    assert message in str(caught.value)


PAYLOADS = {
    "text": ("text/plain", "hello", "", None),
    "json-object": ("application/json", '{"a": 1}', "", None),
    "json-with-charset": ("application/json; charset=utf-8", '{"a": 1}', "", None),
    "base64-json-object": ("application/json", "", "eyJhIjogMX0=", None),
    "base64-binary": ("application/octet-stream", "", "AAEC/w==", None),
    "nothing": ("", "", "", None),
    "both": ("", "x", "eA==", "expected exactly one, got both"),
    "json-array": ("application/json", "[1]", "", "must be a JSON object: spec.data"),
    "json-broken": ("application/json", "{", "", "invalid JSON for application/json"),
    "base64-json-array": ("application/json", "", "WzFd", "must be a JSON object: spec.dataBase64"),
    "base64-invalid": ("", "", "!!!!", "invalid base64"),
    "bad-media-type": ("json", "{}", "", "invalid media type 'json'"),
}  # fmt: skip


@pytest.mark.parametrize(("ctype", "data", "b64", "error"), PAYLOADS.values(), ids=PAYLOADS.keys())
def test_payload_validation(ctype: str, data: str, b64: str, error: str | None) -> None:
    if error is None:
        payload.validate(ctype, data, b64)
        return
    with pytest.raises(payload.PayloadError) as caught:
        payload.validate(ctype, data, b64)
    assert error in str(caught.value)


def test_defaults_are_valid_and_ce_attributes_name_the_source() -> None:
    assert reconciler.invalid({}) is None
    assert reconciler.ce_attributes("ns", "p") == [
        {"type": "dev.knative.sources.ping", "source": "/apis/v1/namespaces/ns/pingsources/p"}
    ]
