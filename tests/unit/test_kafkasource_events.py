"""A consumed record as the event a KafkaSource sends (sources/kafka/events.py): Knative's
attributes for plain records, CloudEvent records passed through."""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime

import pytest

from kevents import cloudevent, kafka
from sources.kafka import events


def record(**fields: object) -> kafka.Record:
    base: dict[str, object] = {
        "topic": "build.done",
        "partition": 2,
        "offset": 41,
        "key": None,
        "value": b'{"buildstatus": "pass"}',
        "headers": (),
        "timestamp_ms": 1_764_660_000_123,
    }
    base.update(fields)
    return kafka.Record(**base)  # type: ignore[arg-type]


def test_plain_record_gets_knatives_attributes() -> None:
    event, carried = events.to_event(
        record(key=b"build-7", headers=(("content-type", b"Application/JSON"),)),
        namespace="ci",
        name="builds",
    )
    assert not carried
    attributes = event.get_attributes()
    assert attributes["type"] == "dev.knative.kafka.event"
    assert attributes["source"] == "/apis/v1/namespaces/ci/kafkasources/builds#build.done"
    assert attributes["subject"] == "partition:2#41"
    assert attributes["id"] == "partition:2/offset:41"
    assert attributes["time"] == datetime(2025, 12, 2, 7, 20, 0, 123000, tzinfo=UTC)
    assert attributes["datacontenttype"] == "application/json"
    assert attributes["key"] == "build-7"
    assert attributes["partitionkey"] == "build-7"
    assert "kafkaheadercontenttype" not in attributes
    assert event.get_data() == b'{"buildstatus": "pass"}'


def test_plain_record_encodes_as_knatives_http_headers() -> None:
    event, _ = events.to_event(record(key=b"k"), namespace="ci", name="builds")
    headers = dict(cloudevent.encode(event).headers)
    assert headers["ce-type"] == "dev.knative.kafka.event"
    assert headers["ce-id"] == "partition:2/offset:41"
    assert headers["ce-subject"] == "partition:2#41"
    assert headers["ce-key"] == "k"
    assert headers["ce-time"] == "2025-12-02T07:20:00.123000Z"


@pytest.mark.parametrize(
    ("header", "extension"),
    [
        ("trace", "kafkaheadertrace"),
        ("X-Request-Id", "kafkaheaderxrequestid"),
        ("build.number", "kafkaheaderbuildnumber"),
        ("Ünïcode_9", "kafkaheaderncode9"),
    ],
    ids=["plain", "mixed-case-dashes", "dots", "non-ascii"],
)
def test_headers_become_sanitized_extensions(header: str, extension: str) -> None:
    event, _ = events.to_event(
        record(headers=((header, "valüe".encode()),)), namespace="ci", name="builds"
    )
    assert event.get_attributes()[extension] == "valüe"


def test_record_without_key_timestamp_or_value() -> None:
    event, _ = events.to_event(record(value=None, timestamp_ms=None), namespace="ci", name="builds")
    attributes = event.get_attributes()
    assert "key" not in attributes and "partitionkey" not in attributes
    assert event.get_data() is None


@pytest.mark.parametrize(
    ("key_type", "key", "expected"),
    [
        ("string", b"abc", "abc"),
        ("int", (7).to_bytes(4, "big", signed=True), 7),
        ("int", (-2).to_bytes(8, "big", signed=True), -2),
        ("int", (2**40).to_bytes(8, "big"), str(2**40)),
        ("float", struct.pack(">d", 1.5), "1.5"),
        ("byte-array", b"\x00\xff", base64.standard_b64encode(b"\x00\xff").decode()),
        ("string", b"\xff", "\ufffd"),
    ],
    ids=["string", "int32", "int64-small", "int64-large", "double", "bytes", "bad-utf8"],
)
def test_key_types(key_type: str, key: bytes, expected: object) -> None:
    event, _ = events.to_event(record(key=key), namespace="ci", name="b", key_type=key_type)
    assert event.get_attributes()["key"] == expected


def test_binary_cloudevent_record_goes_out_as_that_event() -> None:
    sent = cloudevent.build(
        "dev.knative.sources.ping", "/apis/v1/namespaces/ci/pingsources/p", {"a": 1},
        id="abc-1", datacontenttype="application/json", extensions={"buildstatus": "pass"},
    )  # fmt: skip
    message = kafka.encode_event(sent, kafka.ContentMode.BINARY)
    event, carried = events.to_event(
        record(value=message.value, headers=message.headers), namespace="ci", name="builds"
    )
    assert carried
    attributes = event.get_attributes()
    assert attributes["id"] == "abc-1"
    assert attributes["type"] == "dev.knative.sources.ping"
    assert attributes["buildstatus"] == "pass"
    assert event.get_data() == {"a": 1}


def test_structured_cloudevent_record_goes_out_as_that_event() -> None:
    sent = cloudevent.build("t.structured", "/s", "text", id="s-1", datacontenttype="text/plain")
    message = kafka.encode_event(sent, kafka.ContentMode.STRUCTURED)
    event, carried = events.to_event(
        record(value=message.value, headers=message.headers), namespace="ci", name="builds"
    )
    assert carried
    assert (event.get_id(), event.get_type(), event.get_data()) == ("s-1", "t.structured", "text")


def test_broken_cloudevent_record_is_delivered_as_a_plain_record() -> None:
    broken = record(headers=(("ce_specversion", b"1.0"), ("ce_type", b"t")), value=b"x")
    event, carried = events.to_event(broken, namespace="ci", name="builds")
    assert not carried
    assert event.get_type() == "dev.knative.kafka.event"
    assert event.get_attributes()["kafkaheadercespecversion"] == "1.0"
