"""Received events kept as bytes: accepted exactly when `cloudevent.decode` accepts them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from kevents import cloudevent, errors, rawevent

BASE = {"ce-specversion": "1.0", "ce-id": "a-1", "ce-type": "t.x", "ce-source": "/s"}
BODY = b'{"n":  1}'


def _headers(**changes: str | None) -> CIMultiDict[str]:
    headers = CIMultiDict({**BASE, "Content-Type": "application/json"})
    for name, value in changes.items():
        key = name.replace("_", "-")
        headers.popall(key, None)
        if value is not None:
            headers[key] = value
    return headers


def _same_verdict(headers: CIMultiDict[str], body: bytes) -> rawevent.RawEvent | None:
    try:
        expected: str | None = None
        cloudevent.decode(headers, body)
    except errors.InvalidEventError as exc:
        expected = exc.reason
    try:
        received = rawevent.receive(headers, body)
    except errors.InvalidEventError as exc:
        assert exc.reason == expected
        return None
    assert expected is None, f"accepted what decode refuses: {expected}"
    return received


@pytest.mark.parametrize(
    ("changes", "valid"),
    [
        ({}, True),
        ({"ce_id": None}, False),
        ({"ce_id": ""}, False),
        ({"ce_source": ""}, False),
        ({"ce_specversion": "0.2"}, False),
        ({"ce_specversion": "0.3"}, True),
        ({"ce_time": "2026-03-01T12:00:00Z"}, True),
        ({"ce_time": "yesterday"}, False),
        ({"ce_subject": ""}, False),
        ({"ce_id": "a%20b"}, True),
        ({"ce_data": "x"}, False),
        ({"ce_datacontenttype": "text/plain"}, True),
        ({"Content_Type": ""}, False),
        ({"Content_Type": None}, True),
        ({"ce_Bad_Name": "refused"}, False),
        ({"ce_specversion": None, "Content_Type": "application/json"}, False),
    ],
    ids=[
        "plain", "no-id", "empty-id", "empty-source", "old-spec", "spec-0.3", "time", "bad-time",
        "empty-subject", "percent", "reserved-data", "ce-datacontenttype", "empty-type",
        "no-content-type", "bad-attribute-name", "not-a-cloudevent",
    ],
)  # fmt: skip
def test_binary_verdicts_match_decode(changes: dict[str, str | None], valid: bool) -> None:
    received = _same_verdict(_headers(**changes), BODY)
    assert (received is not None) is valid


def test_binary_event_is_forwarded_as_received() -> None:
    headers = _headers(ce_team="blue", X_Request_Id="r-1")
    headers.add("ce-team", "second value")
    received = rawevent.receive(headers, BODY)
    assert received.message(cloudevent.Encoding.BINARY) == (
        {**BASE, "ce-team": "blue", "content-type": "application/json"},
        BODY,
    )
    assert received.message(cloudevent.Encoding.STRUCTURED) is None
    assert (received.get_id(), received.get_type(), received.get_source()) == ("a-1", "t.x", "/s")
    assert received.event().get_data() == {"n": 1}


def test_structured_event_keeps_its_body_and_decodes_for_other_modes() -> None:
    event = cloudevent.build("t.x", "/s", {"n": 1}, id="s-1", datacontenttype="application/json")
    message = cloudevent.encode(event, cloudevent.Encoding.STRUCTURED)
    received = rawevent.receive(CIMultiDict(message.headers), message.body)
    assert received.message(cloudevent.Encoding.STRUCTURED) == (
        {"content-type": "application/cloudevents+json"},
        message.body,
    )
    assert received.message(cloudevent.Encoding.BINARY) is None
    assert received.event().get_id() == "s-1"


@given(
    st.dictionaries(
        st.sampled_from(["ce-id", "ce-source", "ce-type", "ce-specversion", "ce-subject",
                         "ce-time", "ce-ext1", "ce-data", "content-type"]),
        st.sampled_from(["", "1.0", "x", "%41", "2026-01-01T00:00:00Z", "a b"]),
    ),
    st.sampled_from([b"", b"{}", b"[1]", b"\xff"]),
)  # fmt: skip
def test_any_binary_message_gets_the_verdict_of_decode(
    headers: dict[str, str], body: bytes
) -> None:
    _same_verdict(CIMultiDict(headers), body)
