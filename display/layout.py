"""The text layout of Knative's event_display sample (the CloudEvents Go SDK's `String()`):

☁️  cloudevents.Event
Context Attributes,
  specversion: 1.0
  type: dev.knative.apiserver.resource.add
  source: https://10.96.0.1:443
  subject: /apis/v1/namespaces/default/pods/p
  id: 1b1c...
  time: 2026-11-23T10:00:00Z
  datacontenttype: application/json
Extensions,
  kind: Pod
Data,
  {
    "kind": "Pod"
  }
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

from kevents import cloudevent

CONTEXT_ORDER = ("specversion", "type", "source", "subject", "id", "time", "dataschema",
                 "datacontenttype")  # fmt: skip


def _text(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def attributes(event: cloudevent.CloudEvent) -> tuple[dict[str, str], dict[str, str]]:
    """Context attributes (in the SDK's order) and extensions (sorted), as strings."""
    raw = event.get_attributes()
    context = {k: _text(raw[k]) for k in CONTEXT_ORDER if raw.get(k) not in (None, "")}
    extensions = {k: _text(raw[k]) for k in sorted(raw) if k not in CONTEXT_ORDER}
    return context, extensions


def data_text(event: cloudevent.CloudEvent) -> str:
    """The payload as the sample prints it: indented JSON, text, or base64 for binary."""
    data = event.get_data()
    if data is None:
        return ""
    if isinstance(data, dict | list):
        return json.dumps(data, indent=2, ensure_ascii=False)
    if isinstance(data, bytes):
        try:
            return json.dumps(json.loads(data), indent=2, ensure_ascii=False)
        except (ValueError, UnicodeDecodeError):
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return base64.b64encode(data).decode()
    return str(data)


def render(event: cloudevent.CloudEvent) -> str:
    """The whole block for one event, ending with a newline."""
    context, extensions = attributes(event)
    lines = ["☁️  cloudevents.Event", "Context Attributes,"]
    lines += [f"  {k}: {v}" for k, v in context.items()]
    if extensions:
        lines.append("Extensions,")
        lines += [f"  {k}: {v}" for k, v in extensions.items()]
    body = data_text(event)
    if body:
        lines.append("Data,")
        lines += ["  " + line for line in body.splitlines()]
    return "\n".join(lines) + "\n"
