"""Heartbeat events and the sample's flags, as Knative's `cmd/heartbeats`:

type        dev.knative.eventing.samples.heartbeat      (--eventType)
source      https://knative.dev/eventing-contrib/cmd/heartbeats/#<POD_NAMESPACE>/<POD_NAME>
                                                        (--eventSource)
extensions  the=42 (integer), heart="yes", beats=true (boolean), then K_CE_OVERRIDES
data        {"id": <sequence from 1>, "label": "<--label>"} (+ "msg" when --msg is set)
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kevents import cloudevent, settings

DEFAULT_TYPE = "dev.knative.eventing.samples.heartbeat"
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
             "h": 3600.0}  # fmt: skip
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_period(text: str) -> float:
    """Seconds in a Go duration (`5s`, `1m30s`, `500ms`) or an integer of seconds."""
    text = text.strip()
    if not text:
        return 5.0
    if text.isdigit():
        return float(text)
    pos, total = 0, 0.0
    for match in _GO_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"invalid period {text!r}: use a Go duration (5s, 1m30s) or seconds")
    if total <= 0:
        raise ValueError(f"period must be positive, got {text!r}")
    return total


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    sink: str
    event_type: str
    event_source: str
    label: str
    msg: str
    period: float
    one_shot: bool
    overrides: Mapping[str, str]


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> Options:
    """Flags as the sample has them; K_SINK wins over --sink; POD_NAME/POD_NAMESPACE needed."""
    parser = argparse.ArgumentParser(prog="heartbeat", description=__doc__)
    parser.add_argument("--eventSource", default="")
    parser.add_argument("--eventType", default=DEFAULT_TYPE)
    parser.add_argument("--sink", default="")
    parser.add_argument("--label", default="")
    parser.add_argument("--msg", default="")
    parser.add_argument("--period", default="5s")
    args = parser.parse_args(list(argv))
    reader = settings.EnvReader(env)
    name = reader.string("POD_NAME", required=True)
    namespace = reader.string("POD_NAMESPACE", required=True)
    overrides = reader.ce_overrides()
    one_shot = reader.boolean("ONE_SHOT", False)
    sink = reader.url("K_SINK") or args.sink
    if not sink:
        reader.problem("K_SINK", "is required (or --sink)")
    period = 5.0
    try:
        period = parse_period(args.period)
    except ValueError as exc:
        reader.problem("--period", str(exc))
    reader.check()
    label = args.label
    if label.startswith('"') and label.endswith('"') and len(label) >= 2:
        label = label[1:-1]
    source = args.eventSource or (
        f"https://knative.dev/eventing-contrib/cmd/heartbeats/#{namespace}/{name}"
    )
    return Options(sink, args.eventType, source, label, args.msg, period, one_shot, overrides)


def event(options: Options, sequence: int) -> cloudevent.CloudEvent:
    data: dict[str, Any] = {"id": sequence, "label": options.label}
    if options.msg:
        data["msg"] = options.msg
    extensions: dict[str, object] = {"the": 42, "heart": "yes", "beats": True}
    extensions.update(options.overrides)
    return cloudevent.build(
        options.event_type,
        options.event_source,
        data,
        datacontenttype="application/json",
        extensions=extensions,
    )
