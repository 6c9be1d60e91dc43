"""tests/e2e/eventlog.py: events read back from event_display's log, Knative's and ours."""

from __future__ import annotations

from display import layout
from kevents import cloudevent
from tests.e2e import eventlog

KNATIVE = """\
2026/12/02 14:31:00 failed to parse observability config from env, falling back to default config
☁️  cloudevents.Event
Context Attributes,
  specversion: 1.0
  type: t.check
  source: h23/check
  subject: s
  id: id-0
  datacontenttype: application/json
Extensions,
  myext: v
Data,
  {
    "hello": "world",
    "n": [
      1,
      2
    ]
  }
☁️  cloudevents.Event
Context Attributes,
  specversion: 1.0
  type: t.check
  source: h23/check
  id: id-1
  datacontenttype: text/plain
Data,
  build 42 | built
2026/12/02 14:31:09 a later log line of the program
"""
"""What knative.dev/eventing v0.49.2's event_display (sdk-go v2.16.1) printed for two events
POSTed to it on the node agent's runc runtime."""


def test_knatives_layout_reads_as_the_display_list() -> None:
    first, second = eventlog.parse(KNATIVE)
    assert first == {
        "attributes": {
            "specversion": "1.0",
            "type": "t.check",
            "source": "h23/check",
            "subject": "s",
            "id": "id-0",
            "datacontenttype": "application/json",
        },
        "extensions": {"myext": "v"},
        "data": '{\n  "hello": "world",\n  "n": [\n    1,\n    2\n  ]\n}',
    }
    assert second["attributes"]["id"] == "id-1"
    assert second["extensions"] == {}
    assert second["data"] == "build 42 | built"


def test_older_sdks_validation_lines_are_skipped() -> None:
    text = (
        "☁️  cloudevents.Event\nValidation: invalid\nValidation Error: \nid: MUST be a"
        " non-empty string\nContext Attributes,\n  specversion: 1.0\n  type: t\n"
    )
    (event,) = eventlog.parse(text)
    assert event["attributes"] == {"specversion": "1.0", "type": "t"}


def test_our_displays_log_reads_back_what_it_received() -> None:
    sent = [
        cloudevent.build("t", "s", {"kind": "Pod", "n": [1, 2]}, id="a", extensions={"x": "1"}),
        cloudevent.build("t", "s", "plain text", id="b"),
        cloudevent.build("t", "s", None, id="c"),
    ]
    read = eventlog.parse("".join(layout.render(e) for e in sent))
    assert [e["attributes"]["id"] for e in read] == ["a", "b", "c"]
    assert read[0]["extensions"] == {"x": "1"}
    assert read[0]["data"] == layout.data_text(sent[0])
    assert read[1]["data"] == "plain text"
    assert read[2]["data"] == ""
