"""A PingSource -> the adapter's Job: payload, refusal by the shared rules, which fire."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kevents import cloudevent, pingspec
from sources.ping import events, spec

NOW = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


def source(spec_fields: dict[str, Any], status: dict[str, Any] | None = None) -> spec.PingSource:
    obj: dict[str, Any] = {
        "metadata": {"namespace": "ns", "name": "ping", "uid": "u-1",
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"sink": {"uri": "http://127.0.0.1:1/"}, **spec_fields},
        "status": {"sinkUri": "http://127.0.0.1:1/"} if status is None else status,
    }  # fmt: skip
    return obj  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("fields", "body", "content_type"),
    [
        ({"data": '{"msg": "hi"}', "contentType": "application/json"},
         b'{"msg": "hi"}', "application/json"),
        ({"data": "plain words", "contentType": "text/plain"}, b"plain words", "text/plain"),
        ({"data": "no type"}, b"no type", None),
        ({"dataBase64": "aGVsbG8gd29ybGQ=", "contentType": "application/octet-stream"},
         b"hello world", "application/octet-stream"),
        ({"dataBase64": "eyJhIjogMX0=", "contentType": "application/json"},
         b'{"a": 1}', "application/json"),
        ({"contentType": "application/json"}, None, None),
        ({}, None, None),
    ],
    ids=["json", "text", "no-content-type", "base64-binary", "base64-json", "type-no-data",
         "empty"],
)  # fmt: skip
def test_payload(fields: dict[str, Any], body: bytes | None, content_type: str | None) -> None:
    job = spec.job_of(source(fields), now=NOW)
    assert job is not None
    assert job.payload == pingspec.Payload(body, content_type)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"data": "x", "dataBase64": "eA=="},
         "spec.data, spec.dataBase64: expected exactly one, got both"),
        ({"schedule": "0 0 31 2 *"}, "spec.schedule: '0 0 31 2 *' never fires"),
        ({"schedule": "*/5 * * * * *"}, "spec.schedule: '*/5 * * * * *' fires every 5 s"),
        ({"timezone": "CST"}, "spec.timezone: provided bad location CST"),
    ],
    ids=["both-data", "impossible", "below-the-floor", "bad-zone"],
)  # fmt: skip
def test_invalid_sources_are_refused_with_the_shared_rules(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(pingspec.InvalidSpecError) as caught:
        spec.job_of(source(fields), now=NOW)
    assert str(caught.value).startswith(message)


def test_a_lower_floor_is_passed_through() -> None:
    job = spec.job_of(
        source({"schedule": "* * * * * *"}), now=NOW, limits=pingspec.Limits(min_interval=1)
    )
    assert job is not None and job.schedule.seconds


@pytest.mark.parametrize(
    ("status", "fires"),
    [
        ({"sinkUri": "http://127.0.0.1:1/"}, True),
        ({"sinkUri": "http://127.0.0.1:1/",
          "conditions": [{"type": "Ready", "status": "True"}]}, True),
        ({"sinkUri": "http://127.0.0.1:1/",
          "conditions": [{"type": "Ready", "status": "False"}]}, False),
        ({"sinkUri": "http://127.0.0.1:1/",
          "conditions": [{"type": "Ready", "status": "Unknown"}]}, False),
        ({}, False),
        ({"sinkUri": "relative/path"}, False),
    ],
    ids=["sink-no-conditions", "ready", "not-ready", "unknown", "no-sink", "relative-sink"],
)  # fmt: skip
def test_only_resolved_ready_sources_fire(status: dict[str, Any], fires: bool) -> None:
    assert (spec.job_of(source({}, status), now=NOW) is not None) is fires


def test_event_has_knative_attributes_and_overrides() -> None:
    job = spec.job_of(
        source({"data": '{"a": 1}', "contentType": "application/json",
                "ceOverrides": {"extensions": {"team": "blue"}}}),
        now=NOW,
    )  # fmt: skip
    assert job is not None and job.created == NOW.timestamp()
    tick = datetime.datetime(2025, 6, 1, 10, 1, tzinfo=datetime.UTC).timestamp()
    first, second = events.make(job, tick), events.make(job, tick)
    assert first.get_type() == "dev.knative.sources.ping"
    assert first.get_source() == "/apis/v1/namespaces/ns/pingsources/ping"
    assert first.get_subject() is None
    assert first.get_extension("team") == "blue"
    assert first.get_id() != second.get_id()
    message = cloudevent.encode(first)
    assert message.body == b'{"a": 1}'
    assert message.headers["content-type"] == "application/json"
    assert message.headers["ce-time"].startswith("2025-06-01T10:01:00")
