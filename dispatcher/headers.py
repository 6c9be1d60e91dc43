"""Which incoming HTTP headers travel with an event to subscribers, replies and dead letters.

Knative's pass-through set (`knative/eventing:pkg/utils/headers.go`): `x-request-id`,
`retry-after`, and every `knative-*` and `x-b3-*` header; everything else (Host,
Authorization, cookies...) stays behind. The B3 *propagation* headers (trace/span ids,
sampling) are not copied: the dispatcher continues the trace and writes them afresh with its
own span as parent, alongside W3C `traceparent` (kevents.tracing).
"""

from __future__ import annotations

from collections.abc import Iterable

PREFER_REPLY = ("Prefer", "reply")
"""Added to requests to subscribers only (not to replies or dead-letter sinks)."""
NAMESPACE_HEADER = "Kn-Namespace"
"""Sent with every delivery (subscriber, reply, dead letter), naming the channel's namespace
(a Trigger's, for a broker), as Knative's channel fan-out and broker filter do
(`apis.KnNamespaceHeader`); a producer's own value is not passed through."""

_EXACT = frozenset({"x-request-id", "retry-after"})
_PREFIXES = ("knative-", "x-b3-")
_REWRITTEN = frozenset(
    {"x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"}
)


def passes(name: str) -> bool:
    """Whether header `name` (any case) is forwarded."""
    lowered = name.lower()
    if lowered in _EXACT:
        return True
    return lowered.startswith(_PREFIXES) and lowered not in _REWRITTEN


def passthrough(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The forwarded subset of `items`, names lower-cased (first value of a repeated name)."""
    out: dict[str, str] = {}
    for name, value in items:
        lowered = name.lower()
        if lowered in _EXACT or (lowered.startswith(_PREFIXES) and lowered not in _REWRITTEN):
            out.setdefault(lowered, value)
    return out
