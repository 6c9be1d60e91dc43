"""The events Knative's event_display printed, read back from its log.

Knative's program (`knative.dev/eventing/cmd/event_display`, run from its image by the node
agent's runc runtime) keeps nothing and serves no list: what it received is only in its log,
as the CloudEvents Go SDK's `Event.String()` (sdk-go v2.16) after a banner line:

    ☁️  cloudevents.Event
    Context Attributes,
      specversion: 1.0
      type: dev.knative.apiserver.resource.add
      ...
    Extensions,
      kind: Pod
    Data,
      {
        "kind": "Pod"
      }

kevents' own display (the process runtime's stand-in for that image) prints the same layout,
so one reader serves both. `parse` gives each event in the shape of kevents' display list
(`GET /events`: `attributes`, `extensions`, `data` as text). Older SDKs printed a
`Validation: valid` line (and the error) after the banner: skipped. Lines of the log that
belong to no event (start-up messages) are skipped; a data text that spans lines is kept
while its lines are indented (the SDK indents JSON; our display every line), so an
unindented line ends it.
"""

from __future__ import annotations

from typing import Any

BANNER = "☁️  cloudevents.Event"


def _pair(line: str) -> tuple[str, str]:
    key, _, value = line.strip().partition(": ")
    return key, value


def parse(text: str) -> list[dict[str, Any]]:
    """Every event block of `text`, in log order."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    section = ""
    data: list[str] = []

    def close() -> None:
        if current is not None:
            current["data"] = "\n".join(data)
            events.append(current)

    for line in text.splitlines():
        if line == BANNER:
            close()
            current, section, data = {"attributes": {}, "extensions": {}}, "", []
            continue
        if current is None:
            continue
        if line.startswith("Validation: "):
            section = "validation"
        elif line == "Context Attributes,":
            section = "attributes"
        elif line == "Extensions,":
            section = "extensions"
        elif line in ("Data,", "Data (binary),"):
            section = "data"
        elif section == "data" and line.startswith("  "):
            data.append(line[2:])
        elif section in ("attributes", "extensions") and line.startswith("  "):
            key, value = _pair(line)
            current[section][key] = value
        elif section != "validation":
            # a log line of the program, after the event: the block is over
            close()
            current, section, data = None, "", []
    close()
    return events
