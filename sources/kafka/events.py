"""A consumed Kafka record as the CloudEvent a KafkaSource sends.

A record that is a CloudEvent (binary mode `ce_` headers, or structured mode
`application/cloudevents+json`, decoded by `kevents.kafka.decode_record`) goes out as that
event. Any other record (or one whose CloudEvent is broken: Knative's `CloudEventDeserializer`
wraps it as invalid and converts it too) becomes, as knative-extensions/eventing-kafka-broker's
`InvalidCloudEventInterceptor` builds it:

| attribute | value |
|---|---|
| `type` | `dev.knative.kafka.event` |
| `source` | `/apis/v1/namespaces/<ns>/kafkasources/<name>#<topic>` |
| `subject` | `partition:<P>#<offset>` |
| `id` | `partition:<P>/offset:<offset>` |
| `time` | the record's timestamp (UTC) |
| `key`, `partitionkey` | the record key (typed by the source's `key-type` label) |
| `kafkaheader<name>` | each header (name lower-cased, only a-z0-9 kept), value as UTF-8 |
| `datacontenttype` | the `content-type` header, lower-cased (it is not an extension) |
| data | the record value, bytes as they are |
"""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime

from kevents import cloudevent, errors, kafka, kafkasourcespec

CONTENT_TYPE = "content-type"


def header_extension(name: str) -> str:
    """`kafkaheader` + the header name lower-cased with only a-z0-9 kept (Knative's rule)."""
    kept = "".join(c for c in name.lower() if ("a" <= c <= "z") or ("0" <= c <= "9"))
    return "kafkaheader" + kept


def typed_key(key: bytes, key_type: str) -> str | int:
    """The record key as the `key-type` label asks: `string` (default, UTF-8), `int`
    (big-endian signed, 1 to 8 bytes), `float` (IEEE 754, 4 or 8 bytes; sent as its decimal
    text, CloudEvents has no float type), `byte-array` (standard base64). A key that does not
    fit its type falls back to the string form."""
    if key_type == "int" and 0 < len(key) <= 8:
        value = int.from_bytes(key, "big", signed=True)
        if -(2**31) <= value < 2**31:  # a CloudEvents Integer is 32-bit
            return value
        return str(value)
    if key_type == "float" and len(key) in (4, 8):
        return repr(struct.unpack(">f" if len(key) == 4 else ">d", key)[0])
    if key_type == "byte-array":
        return base64.standard_b64encode(key).decode("ascii")
    return key.decode("utf-8", errors="replace")


def convert(record: kafka.Record, *, namespace: str, name: str, key_type: str = "string") -> (
    cloudevent.CloudEvent
):  # fmt: skip
    """The `dev.knative.kafka.event` of a plain record."""
    extensions: dict[str, object] = {}
    content_type: str | None = None
    for header, value in record.headers:
        if header.lower() == CONTENT_TYPE:
            content_type = value.decode("utf-8", errors="replace").lower()
            continue
        extension = header_extension(header)
        if extension != "kafkaheader":
            extensions[extension] = value.decode("utf-8", errors="replace")
    if record.key is not None:
        key = typed_key(record.key, key_type)
        extensions["partitionkey"] = key
        extensions["key"] = key
    stamp = (
        datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        if record.timestamp_ms is not None
        else None
    )
    return cloudevent.build(
        kafkasourcespec.EVENT_TYPE,
        kafkasourcespec.event_source(namespace, name, record.topic),
        record.value,
        id=f"partition:{record.partition}/offset:{record.offset}",
        subject=f"partition:{record.partition}#{record.offset}",
        datacontenttype=content_type,
        time=stamp,
        extensions=extensions,
    )


def to_event(record: kafka.Record, *, namespace: str, name: str, key_type: str = "string") -> (
    tuple[cloudevent.CloudEvent, bool]
):  # fmt: skip
    """The event for `record` and whether the record carried it (False: converted)."""
    try:
        event = kafka.decode_record(record)
    except errors.InvalidEventError:
        event = None  # a broken CloudEvent is delivered as a plain record, never dropped
    if event is not None:
        return event, True
    return convert(record, namespace=namespace, name=name, key_type=key_type), False
