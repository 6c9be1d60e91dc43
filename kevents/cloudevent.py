"""Thin helpers over the CloudEvents v2 SDK (`cloudevents.core`): build, encode, decode.

- `build()` makes a spec 1.0 event (id = new UUID, time = now, unless given).
- `encode()` gives headers + body for HTTP binary mode (Knative's default) or structured mode.
- `decode()` turns an incoming HTTP request/response into an event or raises
  `errors.InvalidEventError` whose reason is fit for a 400 answer. Hostile input is refused
  with a reason, never an exception of another type: an attribute header whose name is not
  lowercase a-z0-9 (`ce-Bad_Ext`; sdk-go refuses it too, where we used to drop it silently),
  JSON nested deeper than `MAX_JSON_DEPTH` (Python's JSON codec recurses on the C stack: an
  event that decodes here must also encode in the courier, for a dead-letter sink or another
  content mode).
- `apply_overrides()` sets the `K_CE_OVERRIDES` extensions (they overwrite same-named ones).

CloudEvents 0.3 is accepted wherever 1.0 is (binary and structured) and stays 0.3: Knative's
channels and brokers forward the version they received (the channel spec: "MUST NOT perform
an upgrade of the passed in version"). A 0.3 event decodes into `CloudEventV03`, a
`CloudEvent` checked by the SDK's 0.3 rules, with 0.3's attribute names (`schemaurl`,
`datacontentencoding`); structured data with `datacontentencoding: base64` decodes to its
bytes, as 1.0's `data_base64` does, and is written back the same way (binary mode: the
raw bytes, without the encoding header). 1.0 events pay nothing for it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from cloudevents.core import exceptions as ce_exceptions
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats import json as ce_json
from cloudevents.core.v03 import event as ce_event_v03
from cloudevents.core.v1 import event as ce_event
from multidict import CIMultiDict, CIMultiDictProxy

from kevents import errors

CloudEvent = ce_event.CloudEvent
Data = dict[str, Any] | str | bytes | None
HTTPMessage = ce_http.HTTPMessage

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"


class Encoding(enum.StrEnum):
    """HTTP content mode; values are Knative's `delivery.format` names."""

    BINARY = "binary"
    STRUCTURED = "json"


class _DataFormat(ce_json.JSONFormat):
    """JSON format that keeps payload bytes faithful when decoding binary mode.

    The SDK turns any UTF-8 body into `str` and any JSON body into whatever it parses to; a
    forwarder would then re-serialise it differently. Here: a JSON *object* becomes a dict,
    `text/*` becomes str, everything else stays the exact bytes received.
    """

    def read_data(self, body: bytes, datacontenttype: str | None) -> Data:
        if not body:
            return None
        content_type = (datacontenttype or self.DEFAULT_CONTENT_TYPE).lower()
        if self.JSON_CONTENT_TYPE_PATTERN.match(content_type) and body.lstrip()[:1] == b"{":
            parsed = super().read_data(body, datacontenttype)
            if isinstance(parsed, dict):
                return parsed
            return body
        if content_type.startswith("text/"):
            try:
                return body.decode("utf-8")
            except UnicodeDecodeError:
                return body
        return body


_FORMAT = _DataFormat()

MAX_JSON_DEPTH = 256
"""Most levels of nested arrays/objects in JSON data we parse (a structured event's body, a
binary event's JSON object data). Python's JSON codec recurses once per level and fails near
1,000 (RecursionError) at a depth that depends on the caller's stack; 256 leaves room for
both decoding and encoding again, and is far beyond real events. Go's limit is 10,000."""


def nests_deeply(body: bytes) -> bool:
    """Whether `body` may hold JSON nested deeper than `MAX_JSON_DEPTH` (a cheap upper bound:
    the count of opening brackets; only then is the parsed value's depth measured)."""
    return body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH


def _deeper_than(value: object, limit: int) -> bool:
    """Whether the parsed JSON `value` nests more than `limit` levels (iterative: no stack)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _too_deep() -> errors.InvalidEventError:
    return errors.InvalidEventError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")


_REQUIRED = ("specversion", "id", "source", "type")
V03 = "0.3"
SPECVERSIONS = ("1.0", V03)
"""The versions accepted (Knative's SDK reads both)."""
_ENCODING = "datacontentencoding"


class CloudEventV03(CloudEvent):
    """A CloudEvents 0.3 event, kept as 0.3 (validated by the SDK's 0.3 rules). It is a
    `CloudEvent` for everything that handles events; `get_dataschema()` reads `schemaurl`."""

    @staticmethod
    def _validate_attribute(attributes: dict[str, Any]) -> None:
        ce_event_v03.CloudEvent._validate_attribute(attributes=attributes)

    def get_dataschema(self) -> str | None:
        value = self.get_attributes().get("schemaurl")
        return None if value is None else str(value)


def _event_class(attributes: Mapping[str, Any]) -> type[CloudEvent]:
    return CloudEventV03 if attributes.get("specversion") == V03 else CloudEvent


def _decoding_factory(attributes: dict[str, Any], data: Data) -> CloudEvent:
    """Event factory for decoding: the SDK would invent `id`, `specversion` and `time`."""
    missing = [name for name in _REQUIRED if name not in attributes]
    if missing:
        raise errors.InvalidEventError(f"missing required attribute(s): {', '.join(missing)}")
    if attributes["specversion"] not in SPECVERSIONS:
        raise errors.InvalidEventError(
            f"unsupported CloudEvents specversion {attributes['specversion']!r}"
        )
    had_time = "time" in attributes
    event = _event_class(attributes)(attributes, data)
    if not had_time:
        del event.get_attributes()["time"]
    return event


def build(
    type: str,
    source: str,
    data: Data = None,
    *,
    id: str | None = None,
    subject: str | None = None,
    datacontenttype: str | None = None,
    time: datetime | None = None,
    extensions: Mapping[str, object] | None = None,
) -> CloudEvent:
    """Build a spec 1.0 CloudEvent; invalid attributes raise `errors.InvalidEventError`."""
    attributes: dict[str, Any] = {"type": type, "source": source}
    if id is not None:
        attributes["id"] = id
    if subject is not None:
        attributes["subject"] = subject
    if datacontenttype is not None:
        attributes["datacontenttype"] = datacontenttype
    if time is not None:
        attributes["time"] = time
    if extensions:
        attributes.update(extensions)
    try:
        return CloudEvent(attributes, data)
    except ce_exceptions.BaseCloudEventException as exc:
        raise errors.InvalidEventError(str(exc)) from exc


def apply_overrides(event: CloudEvent, extensions: Mapping[str, object]) -> CloudEvent:
    """A copy of `event` with `extensions` set, overwriting same-named attributes."""
    if not extensions:
        return event
    attributes = dict(event.get_attributes())
    attributes.update(extensions)
    return _rebuilt(attributes, event.get_data())


def without(event: CloudEvent, *names: str) -> CloudEvent:
    """A copy of `event` without the named extensions (e.g. the broker's internal TTL)."""
    attributes = {k: v for k, v in event.get_attributes().items() if k not in names}
    return _rebuilt(attributes, event.get_data())


def _rebuilt(attributes: dict[str, Any], data: Data) -> CloudEvent:
    """An event of exactly `attributes`: the SDK would add a `time` the producer never set."""
    had_time = "time" in attributes
    try:
        event = _event_class(attributes)(attributes, data)
    except ce_exceptions.BaseCloudEventException as exc:
        raise errors.InvalidEventError(str(exc)) from exc
    if not had_time:
        event.get_attributes().pop("time", None)
    return event


def _canonical(event: CloudEvent) -> CloudEvent:
    """Booleans as `true`/`false` (CloudEvents type system), not Python's `True`/`False`."""
    attributes = event.get_attributes()
    if not any(isinstance(v, bool) for v in attributes.values()):
        return event
    fixed = {
        k: (("true" if v else "false") if isinstance(v, bool) else v) for k, v in attributes.items()
    }
    return _event_class(fixed)(fixed, event.get_data())


def encode(event: CloudEvent, encoding: Encoding = Encoding.BINARY) -> HTTPMessage:
    """Headers and body to POST `event` in the given HTTP content mode."""
    if (
        event.__class__ is CloudEventV03
        and _ENCODING in event.get_attributes()
        and isinstance(event.get_data(), bytes | bytearray)
    ):
        # Bytes data: structured, the SDK writes `datacontentencoding: base64` and the base64
        # itself; binary, the body is the raw bytes (no encoding header).
        event = without(event, _ENCODING)
    if encoding is Encoding.STRUCTURED:
        return ce_http.to_structured(event, _FORMAT)
    return ce_http.to_binary(_canonical(event), _FORMAT)


_CE_ATTRIBUTE_HEADER = re.compile(r"ce-[a-z0-9]+")


def invalid_attribute(header: str) -> errors.InvalidEventError:
    """The 400 reason for a binary-mode `ce-` header that names no valid attribute."""
    return errors.InvalidEventError(
        f"invalid CloudEvents attribute name {header[3:].lower()!r} (header {header!r}): "
        "attribute names are lowercase letters a-z and digits 0-9"
    )


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """Whether an HTTP message (e.g. a subscriber's reply) claims to carry a CloudEvent."""
    if isinstance(headers, CIMultiDict | CIMultiDictProxy):  # case-insensitive already
        if "ce-specversion" in headers:
            return True
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        return content_type == STRUCTURED_CONTENT_TYPE
    lowered = {k.lower(): v for k, v in headers.items()}
    if "ce-specversion" in lowered:
        return True
    content_type = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
    return content_type == STRUCTURED_CONTENT_TYPE


def decode(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Decode a binary- or structured-mode HTTP message; errors name the 400 reason."""
    lowered: dict[str, str] = {}
    bad_name: str | None = None
    for key, value in headers.items():
        name = key.lower()
        if name.startswith("ce-") and not _CE_ATTRIBUTE_HEADER.fullmatch(name):
            bad_name = bad_name or key  # refused in binary mode, ignored in structured mode
            continue
        lowered.setdefault(name, value)
    content_type = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        if "ce-specversion" in lowered:
            if bad_name is not None:
                raise invalid_attribute(bad_name)
            if lowered["ce-specversion"] not in SPECVERSIONS:
                raise errors.InvalidEventError(
                    f"unsupported CloudEvents specversion {lowered['ce-specversion']!r}"
                )
            message = ce_http.HTTPMessage(headers=lowered, body=body)
            event = ce_http.from_binary(message, _FORMAT, _decoding_factory)
        elif content_type == STRUCTURED_CONTENT_TYPE:
            if body.lstrip()[:1] != b"{":
                raise errors.InvalidEventError("structured CloudEvent body must be a JSON object")
            message = ce_http.HTTPMessage(headers=lowered, body=body)
            event = ce_http.from_structured(message, _FORMAT, _decoding_factory)
        elif content_type == BATCH_CONTENT_TYPE:
            raise errors.InvalidEventError("batched CloudEvents are not supported")
        else:
            raise errors.InvalidEventError(
                "not a CloudEvent: no ce-specversion header and Content-Type is not "
                f"{STRUCTURED_CONTENT_TYPE}"
            )
    except errors.InvalidEventError:
        raise
    except RecursionError:
        raise _too_deep() from None
    except ce_exceptions.BaseCloudEventException as exc:
        raise errors.InvalidEventError(f"invalid CloudEvent: {exc}") from exc
    except (ValueError, TypeError, OverflowError) as exc:  # bad JSON, time, base64, UTF-8
        raise errors.InvalidEventError(f"malformed CloudEvent: {exc}") from exc
    if not isinstance(event, CloudEvent):  # pragma: no cover - factory always gives one
        raise errors.InvalidEventError("unsupported CloudEvents specversion")
    if event.get_specversion() not in SPECVERSIONS:
        raise errors.InvalidEventError(
            f"unsupported CloudEvents specversion {event.get_specversion()!r}"
        )
    if nests_deeply(body) and _deeper_than(event.get_data(), MAX_JSON_DEPTH):
        raise _too_deep()
    return event


# The other protocol bindings (kevents.kafka) use the same data format, decoding factory and
# canonical attribute form as HTTP: an event reads and writes alike over every transport.
DATA_FORMAT = _FORMAT
decoding_factory = _decoding_factory
canonical = _canonical
