"""CloudEvent build/encode/decode helpers; hypothesis round-trips for both content modes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kevents import cloudevent, errors, rawevent

WHEN = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def sample(**extra: Any) -> cloudevent.CloudEvent:
    return cloudevent.build(
        "dev.knative.sources.ping",
        "/apis/v1/namespaces/default/pingsources/p",
        {"hello": "world"},
        id="abc-1",
        datacontenttype="application/json",
        time=WHEN,
        **extra,
    )


def test_binary_encoding_puts_attributes_in_headers() -> None:
    message = cloudevent.encode(sample(subject="s1", extensions={"team": "blue"}))
    assert message.headers == {
        "ce-specversion": "1.0",
        "ce-type": "dev.knative.sources.ping",
        "ce-source": "/apis/v1/namespaces/default/pingsources/p",
        "ce-id": "abc-1",
        "ce-time": "2026-03-01T12:00:00.123456Z",
        "ce-subject": "s1",
        "ce-team": "blue",
        "content-type": "application/json",
    }
    assert json.loads(message.body) == {"hello": "world"}


def test_structured_encoding_puts_everything_in_the_body() -> None:
    message = cloudevent.encode(sample(), cloudevent.Encoding.STRUCTURED)
    assert message.headers == {"content-type": "application/cloudevents+json"}
    body = json.loads(message.body)
    assert body["type"] == "dev.knative.sources.ping"
    assert body["data"] == {"hello": "world"}
    assert body["time"] == "2026-03-01T12:00:00.123456Z"


def test_boolean_extension_is_encoded_the_cloudevents_way() -> None:
    message = cloudevent.encode(sample(extensions={"beats": True, "the": 42}))
    assert message.headers["ce-beats"] == "true"
    assert message.headers["ce-the"] == "42"


def test_build_defaults_id_and_time() -> None:
    event = cloudevent.build("t", "s")
    assert len(event.get_id()) == 36
    assert event.get_time() is not None


def test_build_rejects_invalid_attributes() -> None:
    with pytest.raises(errors.InvalidEventError) as caught:
        cloudevent.build("", "s", extensions={"Bad-Name": "x"})
    assert "type" in caught.value.reason
    assert "Bad-Name" in caught.value.reason


def test_overrides_are_applied_and_overwrite() -> None:
    event = sample(extensions={"team": "red"})
    overridden = cloudevent.apply_overrides(event, {"team": "blue", "env": "prod"})
    assert overridden.get_extension("team") == "blue"
    assert overridden.get_extension("env") == "prod"
    assert event.get_extension("team") == "red"  # the original is untouched
    assert overridden.get_id() == event.get_id()
    assert cloudevent.apply_overrides(event, {}) is event


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({"content-type": "application/json"}, b"{}", "not a CloudEvent"),
        ({}, b"", "not a CloudEvent"),
        (
            {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "s"},
            b"",
            "missing required attribute(s): id",
        ),
        (
            {"ce-specversion": "0.2", "ce-type": "t", "ce-source": "s", "ce-id": "1"},
            b"",
            "unsupported CloudEvents specversion '0.2'",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-type": "t",
                "ce-source": "s",
                "ce-id": "1",
                "ce-time": "yesterday",
            },
            b"",
            "malformed CloudEvent",
        ),  # fmt: skip
        (
            {"ce-specversion": "1.0", "ce-type": "", "ce-source": "s", "ce-id": "1"},
            b"",
            "invalid CloudEvent",
        ),
        ({"content-type": "application/cloudevents+json"}, b"{not json", "malformed"),
        ({"content-type": "application/cloudevents+json"}, b"[1]", "must be a JSON object"),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"type":"t","source":"s","id":"1"}',
            "missing required attribute(s): specversion",
        ),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"specversion":"1.0","type":"t","source":"s","id":"1","data_base64":"abc"}',
            "malformed",
        ),
        (
            {"content-type": "application/cloudevents-batch+json"},
            b"[]",
            "batched CloudEvents are not supported",
        ),
    ],
    ids=[
        "plain-json",
        "nothing",
        "binary-missing-id",
        "binary-old-spec",
        "binary-bad-time",
        "binary-empty-type",
        "structured-bad-json",
        "structured-array",
        "structured-no-specversion",
        "structured-bad-base64",
        "batch",
    ],
)
def test_decode_errors_give_a_400_reason(headers: dict[str, str], body: bytes, reason: str) -> None:
    with pytest.raises(errors.InvalidEventError) as caught:
        cloudevent.decode(headers, body)
    assert reason in caught.value.reason


def test_decode_binary_with_mixed_case_headers() -> None:
    event = cloudevent.decode(
        {"Ce-Specversion": "1.0", "CE-Type": "t", "Ce-Source": "s", "Ce-Id": "1",
         "Content-Type": "text/plain; charset=utf-8"},
        b"hi",
    )  # fmt: skip
    assert (event.get_type(), event.get_source(), event.get_id()) == ("t", "s", "1")
    assert event.get_data() == "hi"
    assert event.get_datacontenttype() == "text/plain; charset=utf-8"


def test_decode_does_not_invent_time() -> None:
    event = cloudevent.decode({"ce-specversion": "1.0", "ce-type": "t", "ce-source": "s",
                               "ce-id": "1"}, b"")  # fmt: skip
    assert event.get_time() is None
    assert "ce-time" not in cloudevent.encode(event).headers


def test_decode_keeps_non_json_bytes_exact() -> None:
    payload = b"\x00\x01\xff"
    event = cloudevent.decode(
        {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "s", "ce-id": "1",
         "content-type": "application/octet-stream"},
        payload,
    )  # fmt: skip
    assert event.get_data() == payload
    assert cloudevent.encode(event).body == payload


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Ce-Specversion": "1.0"}, True),
        ({"Content-Type": "application/cloudevents+json; charset=utf-8"}, True),
        ({"Content-Type": "application/json"}, False),
        ({}, False),
    ],
    ids=["binary", "structured", "plain-json", "empty"],
)
def test_is_cloudevent(headers: dict[str, str], expected: bool) -> None:
    assert cloudevent.is_cloudevent(headers) is expected


# --- round-trips -----------------------------------------------------------------------------

_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
    min_size=1,
    max_size=40,
)
_ext_names = st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True).filter(
    lambda n: n
    not in {"id", "source", "type", "specversion", "datacontenttype", "dataschema", "subject",
            "time", "data"}
)  # fmt: skip
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10,
)  # fmt: skip
_payloads = st.one_of(
    st.tuples(st.just("application/json"), st.dictionaries(st.text(max_size=8), _json, max_size=5)),
    st.tuples(st.just("application/octet-stream"), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("text/plain"), st.text(min_size=1, max_size=64)),
    st.tuples(st.none(), st.none()),
)
_times = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2999, 1, 1), timezones=st.just(UTC)
)


@given(
    type_=_text,
    source=_text,
    id_=_text,
    subject=st.none() | _text,
    time=st.none() | _times,
    extensions=st.dictionaries(_ext_names, _text, max_size=4),
    payload=_payloads,
    encoding=st.sampled_from(list(cloudevent.Encoding)),
)
def test_encode_decode_round_trip(
    type_: str,
    source: str,
    id_: str,
    subject: str | None,
    time: datetime | None,
    extensions: dict[str, str],
    payload: tuple[str | None, cloudevent.Data],
    encoding: cloudevent.Encoding,
) -> None:
    content_type, data = payload
    event = cloudevent.build(
        type_, source, data, id=id_, subject=subject, datacontenttype=content_type,
        time=time, extensions=extensions,
    )  # fmt: skip
    if time is None:
        del event.get_attributes()["time"]
    message = cloudevent.encode(event, encoding)
    for name, value in message.headers.items():
        assert value.isascii() and "\n" not in value, name  # safe as an HTTP header
    decoded = cloudevent.decode(message.headers, message.body)
    assert decoded.get_attributes() == event.get_attributes()
    assert decoded.get_data() == data


_BINARY = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
_STRUCTURED = {"content-type": "application/cloudevents+json"}


@pytest.mark.parametrize(
    ("header", "name"),
    [("ce-Bad_Ext", "bad_ext"), ("ce-bad-ext", "bad-ext"), ("ce-", ""), ("CE-été", "été")],
    ids=["underscore", "dash", "empty", "non-ascii"],
)
def test_binary_attribute_with_an_invalid_name_is_refused_naming_it(header: str, name: str) -> None:
    """sdk-go refuses such an event; it used to be accepted with the attribute dropped."""
    for receive in (cloudevent.decode, rawevent.receive):
        with pytest.raises(errors.InvalidEventError) as caught:
            receive({**_BINARY, header: "x"}, b"")
        assert f"invalid CloudEvents attribute name {name!r} (header {header!r})" in (
            caught.value.reason
        )


def test_structured_attribute_with_an_invalid_name_is_refused_naming_it() -> None:
    body = b'{"specversion":"1.0","id":"1","source":"/s","type":"t","Bad_Ext":"x"}'
    for receive in (cloudevent.decode, rawevent.receive):
        with pytest.raises(errors.InvalidEventError) as caught:
            receive(_STRUCTURED, body)
        assert "Bad_Ext" in caught.value.reason


def test_ce_headers_are_ignored_in_structured_mode() -> None:
    body = b'{"specversion":"1.0","id":"1","source":"/s","type":"t"}'
    assert cloudevent.decode({**_STRUCTURED, "ce-Bad_Ext": "x"}, body).get_id() == "1"


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"[]" + b"}" * (depth - 1)


@pytest.mark.parametrize("depth", [cloudevent.MAX_JSON_DEPTH + 1, 1_000, 100_000])
def test_deeply_nested_json_is_a_400_in_every_mode(depth: int) -> None:
    """A 2 KB structured event nested 1,000 levels deep used to raise RecursionError (500)."""
    structured = b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":' + _nested(
        depth
    ) + b"}"  # fmt: skip
    binary = {**_BINARY, "content-type": "application/json"}
    for receive in (cloudevent.decode, rawevent.receive):
        for headers, body in ((_STRUCTURED, structured), (binary, _nested(depth))):
            with pytest.raises(errors.InvalidEventError) as caught:
                receive(headers, body)
            assert caught.value.reason == (
                f"JSON nested more than {cloudevent.MAX_JSON_DEPTH} levels deep"
            )


def test_json_at_the_depth_limit_decodes_and_encodes_again() -> None:
    body = _nested(cloudevent.MAX_JSON_DEPTH)
    binary = {**_BINARY, "content-type": "application/json"}
    event = rawevent.receive(binary, body).event()
    for encoding in cloudevent.Encoding:
        message = cloudevent.encode(event, encoding)
        assert cloudevent.decode(message.headers, message.body).get_data() == event.get_data()


def test_many_shallow_brackets_are_not_too_deep() -> None:
    data = b'{"items":[' + b",".join([b'{"a":[1,{"b":[]}]}'] * 2_000) + b"]}"
    binary = {**_BINARY, "content-type": "application/json"}
    assert rawevent.receive(binary, data).event().get_data() is not None


# CloudEvents 0.3, as sdk-go's test.FullEvent() with SetSpecVersion("0.3") sends it (rekt's
# AcceptsCEVersions and ShouldNotUpdateVersion): accepted, and forwarded as 0.3.
V03_BINARY = {
    "ce-specversion": "0.3", "ce-id": "full-1", "ce-source": "http://example.com/source",
    "ce-type": "com.example.FullEvent", "ce-subject": "topic",
    "ce-schemaurl": "http://example.com/schema", "ce-time": "2026-03-01T12:00:00Z",
    "ce-exbool": "true", "ce-exint": "42", "content-type": "text/json",
}  # fmt: skip
V03_STRUCTURED = {
    "specversion": "0.3", "id": "full-2", "source": "/s", "type": "t",
    "schemaurl": "http://example.com/schema", "datacontenttype": "application/octet-stream",
    "datacontentencoding": "base64", "data": "AAEC/w==",
}  # fmt: skip


def test_a_binary_0_3_event_is_accepted_and_forwarded_as_received() -> None:
    received = rawevent.receive(V03_BINARY, b'{"hello":"world"}')
    # The received bytes travel on unchanged: still 0.3, still `schemaurl`.
    headers, body = received.message(cloudevent.Encoding.BINARY) or ({}, b"")
    assert headers["ce-specversion"] == "0.3" and body == b'{"hello":"world"}'
    event = received.event()
    assert event.get_specversion() == "0.3"
    assert event.get_dataschema() == "http://example.com/schema"
    # Another content mode (a subscriber's delivery.format) writes 0.3 too.
    structured = json.loads(cloudevent.encode(event, cloudevent.Encoding.STRUCTURED).body)
    assert structured["specversion"] == "0.3"
    assert structured["schemaurl"] == "http://example.com/schema"


def test_a_structured_0_3_event_with_base64_data_keeps_its_bytes_and_version() -> None:
    body = json.dumps(V03_STRUCTURED).encode()
    received = rawevent.receive({"Content-Type": "application/cloudevents+json"}, body)
    event = received.event()
    assert event.get_data() == b"\x00\x01\x02\xff"
    # The broker's TTL forces a decoded copy: it stays 0.3, the data base64 in 0.3's way.
    with_ttl = received.with_extension("knativebrokerttl", 255)
    assert isinstance(with_ttl, cloudevent.CloudEvent)
    again = json.loads(cloudevent.encode(with_ttl, cloudevent.Encoding.STRUCTURED).body)
    assert again["specversion"] == "0.3" and again["knativebrokerttl"] == 255
    assert (again["datacontentencoding"], again["data"]) == ("base64", "AAEC/w==")
    # In binary mode the body is the raw bytes, without an encoding header.
    binary = cloudevent.encode(event, cloudevent.Encoding.BINARY)
    assert binary.body == b"\x00\x01\x02\xff"
    assert binary.headers["ce-specversion"] == "0.3"
    assert "ce-datacontentencoding" not in binary.headers


def test_an_unknown_specversion_is_still_refused() -> None:
    with pytest.raises(errors.InvalidEventError, match="unsupported CloudEvents specversion"):
        rawevent.receive({**V03_BINARY, "ce-specversion": "0.2"}, b"")
    structured = json.dumps({**V03_STRUCTURED, "specversion": "2.0"}).encode()
    with pytest.raises(errors.InvalidEventError, match="unsupported CloudEvents specversion"):
        rawevent.receive({"Content-Type": "application/cloudevents+json"}, structured)
