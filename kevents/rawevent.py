"""A received CloudEvent kept as the HTTP message it arrived in: forwarded as-is, decoded lazily.

A forwarder (the channel dispatcher) does not need the event's data: decoding a request into a
`cloudevent.CloudEvent` and encoding it again costs more than the rest of the hot path, and
re-serialises the producer's bytes. `receive()` validates an incoming message exactly as
`cloudevent.decode()` would (the same events accepted, the same 400 reasons) and keeps:

- `headers`: the CloudEvent's own headers as received (`ce-<attribute>` and `Content-Type` in
  binary mode, `Content-Type` in structured mode), first value of a repeated name;
- `body`: the received bytes;
- `encoding`: the content mode it arrived in.

`message(encoding)` gives headers + body to send in that mode without any re-encoding when it
is the received one; `event()` decodes (once) where a real event is needed: dead-letter
extensions, a change of content mode, `K_CE_OVERRIDES`.

Binary mode is validated from the headers alone (the SDK accepts any body in binary mode):
required attributes present and non-empty, specversion 1.0. Anything less common (a `time`
to parse, a percent-encoded value, a `ce-datacontenttype` or `ce-data` header, an empty
value, a `ce-` header that names no valid attribute, a body with more opening brackets than
`cloudevent.MAX_JSON_DEPTH`) goes through the full `cloudevent.decode()`, so nothing is
accepted that it refuses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kevents import cloudevent

_ATTRIBUTE_HEADER = re.compile(r"ce-[a-z0-9]+")
_REQUIRED = ("ce-specversion", "ce-id", "ce-source", "ce-type")
_NEEDS_DECODE = frozenset({"ce-time", "ce-data", "ce-datacontenttype"})
"""Headers whose validity only the full decoder can tell (time syntax, reserved names)."""


class RawEvent:
    """An incoming CloudEvent as received; `get_id/get_type/get_source` like a CloudEvent."""

    __slots__ = ("_event", "_id", "_source", "_type", "body", "encoding", "headers")

    def __init__(
        self,
        headers: dict[str, str],
        body: bytes,
        encoding: cloudevent.Encoding,
        *,
        id: str,
        type: str,
        source: str,
        event: cloudevent.CloudEvent | None = None,
    ) -> None:
        self.headers = headers
        self.body = body
        self.encoding = encoding
        self._id = id
        self._type = type
        self._source = source
        self._event = event

    def get_id(self) -> str:
        return self._id

    def get_type(self) -> str:
        return self._type

    def get_source(self) -> str:
        return self._source

    def event(self) -> cloudevent.CloudEvent:
        """The decoded event (decoded on first use; `receive()` validated it already)."""
        if self._event is None:
            self._event = cloudevent.decode(self.headers, self.body)
        return self._event

    def message(self, encoding: cloudevent.Encoding) -> tuple[Mapping[str, str], bytes] | None:
        """Headers and body to send in `encoding` as received, or None for another mode."""
        if encoding is not self.encoding:
            return None
        return self.headers, self.body

    def attributes(self) -> Mapping[str, object]:
        """Context attributes and extensions by name, as filters see them.

        A plainly valid binary-mode event is read from its headers (no decode); anything
        else from the decoded event.
        """
        if self._event is not None or self.encoding is not cloudevent.Encoding.BINARY:
            return self.event().get_attributes()
        out: dict[str, object] = {
            name[3:]: value for name, value in self.headers.items() if name.startswith("ce-")
        }
        content_type = self.headers.get("content-type")
        if content_type is not None:
            out["datacontenttype"] = content_type
        return out

    def extension(self, name: str) -> object | None:
        """The value of one attribute (`name` lower case), without decoding when it can."""
        if self._event is None and self.encoding is cloudevent.Encoding.BINARY:
            return self.headers.get("ce-" + name)
        return self.event().get_attributes().get(name)

    def with_extension(self, name: str, value: int | str) -> RawEvent | cloudevent.CloudEvent:
        """This event with extension `name` set: still the received bytes in binary mode
        (one header more), a decoded copy in structured mode (the body must change)."""
        if self.encoding is not cloudevent.Encoding.BINARY:
            return cloudevent.apply_overrides(self.event(), {name: value})
        headers = dict(self.headers)
        headers["ce-" + name] = str(value)
        decoded = self._event
        return RawEvent(
            headers,
            self.body,
            self.encoding,
            id=self._id,
            type=self._type,
            source=self._source,
            event=cloudevent.apply_overrides(decoded, {name: value}) if decoded else None,
        )

    def without_extension(self, name: str) -> RawEvent | cloudevent.CloudEvent:
        """This event without extension `name` (lower case): the received bytes with one
        header less in binary mode, a decoded copy in structured mode; itself without it."""
        if self.encoding is not cloudevent.Encoding.BINARY:
            decoded = self.event()
            if name not in decoded.get_attributes():
                return self
            return cloudevent.without(decoded, name)
        header = "ce-" + name
        if header not in self.headers:
            return self
        headers = {k: v for k, v in self.headers.items() if k != header}
        known = self._event
        return RawEvent(
            headers,
            self.body,
            self.encoding,
            id=self._id,
            type=self._type,
            source=self._source,
            event=cloudevent.without(known, name) if known else None,
        )


def _binary_headers(headers: Mapping[str, str]) -> tuple[dict[str, str], bool]:
    """(the event's headers with lower-cased names, whether they are plainly valid)."""
    kept: dict[str, str] = {}
    plain = True
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith("ce-"):
            if lowered in kept:
                continue  # a repeat: decode() keeps the first value too
            if not _ATTRIBUTE_HEADER.fullmatch(lowered):
                plain = False  # not an attribute name: decode() refuses it with its reason
                continue
            if lowered in _NEEDS_DECODE or not value or "%" in value:
                plain = False
        elif lowered == "content-type":
            if lowered in kept:
                continue
            if not value:
                plain = False  # an empty datacontenttype: decode() tells why it is invalid
        else:
            continue
        kept[lowered] = value
    return kept, plain


def receive(headers: Mapping[str, str], body: bytes) -> RawEvent:
    """Validate an incoming HTTP message as `cloudevent.decode()` would, keeping its bytes.

    Raises `errors.InvalidEventError` with the reason of a 400 answer.
    """
    specversion = headers.get("ce-specversion")
    if specversion is None:
        specversion = next((v for k, v in headers.items() if k.lower() == "ce-specversion"), None)
    if specversion is not None:
        kept, plain = _binary_headers(headers)
        if (
            plain
            and specversion == "1.0"
            and all(kept.get(name) for name in _REQUIRED)
            and not cloudevent.nests_deeply(body)
        ):
            return RawEvent(
                kept,
                body,
                cloudevent.Encoding.BINARY,
                id=kept["ce-id"],
                type=kept["ce-type"],
                source=kept["ce-source"],
            )
        event = cloudevent.decode(headers, body)  # raises with the reason, or accepts
        return RawEvent(
            kept,
            body,
            cloudevent.Encoding.BINARY,
            id=event.get_id(),
            type=event.get_type(),
            source=event.get_source(),
            event=event,
        )
    event = cloudevent.decode(headers, body)  # structured mode (or a 400)
    content_type = next(v for k, v in headers.items() if k.lower() == "content-type")
    return RawEvent(
        {"content-type": content_type},
        body,
        cloudevent.Encoding.STRUCTURED,
        id=event.get_id(),
        type=event.get_type(),
        source=event.get_source(),
        event=event,
    )
