"""Trigger objects -> what the broker filter needs to deliver (pure, no I/O).

The controller subscribes every Trigger to its broker's channel with the subscriber URI
`http://broker-filter.<system ns>.svc.cluster.local/triggers/<ns>/<name>/<uid>` (Knative's
filter path). The dispatcher serves that channel itself, so instead of POSTing to the
filter it recognises the URI (`filter_key()`), looks the Trigger up in the table this module
parses (`parse()`: the compiled filter and `status.subscriberUri`), and delivers straight to
the Trigger's subscriber through the same lane, retries and dead-letter path as any
subscription. A Trigger the table does not know yet (its informer lags) or whose uid
differs is a retryable failure, like Knative's filter answering 404.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from kevents.eventfilter import dialects
from kevents.eventfilter import trigger as trigger_filter

FILTER_HOST = "broker-filter"
"""First DNS label of the filter Service's host in subscriber URIs."""
FILTER_PATH = "triggers"


@dataclasses.dataclass(frozen=True, slots=True)
class FilterKey:
    """A filter URI's (namespace, name, uid) of a Trigger."""

    namespace: str
    name: str
    uid: str


@dataclasses.dataclass(frozen=True, slots=True)
class Trigger:
    namespace: str
    name: str
    uid: str
    broker: str
    filter: dialects.Filter
    subscriber_uri: str
    """Resolved by the controller (`status.subscriberUri`); empty until it is."""
    problem: str = ""
    """Why events cannot be delivered (invalid filter, unresolved subscriber)."""


def parse_filter_path(path: str) -> FilterKey | None:
    """(namespace, name, uid) from `/triggers/<ns>/<name>/<uid>`, else None."""
    parts = path.strip("/").split("/")
    if len(parts) != 4 or parts[0] != FILTER_PATH or not all(parts[1:]):
        return None
    return FilterKey(parts[1], parts[2], parts[3])


def filter_key(uri: str) -> FilterKey | None:
    """The Trigger a subscriber URI points at when it is the broker filter's, else None."""
    if "/" + FILTER_PATH + "/" not in uri:
        return None
    parts = urlsplit(uri)
    if (parts.hostname or "").split(".", 1)[0] != FILTER_HOST:
        return None
    return parse_filter_path(parts.path)


def servable(table: Mapping[tuple[str, str], Trigger], key: FilterKey) -> Trigger | None:
    """The Trigger a filter URI names when the table has it ready to deliver (same uid, no
    problem), else None."""
    found = table.get((key.namespace, key.name))
    if found is None or found.uid != key.uid or found.problem:
        return None
    return found


def parse(obj: Mapping[str, Any]) -> Trigger:
    """The served form of a Trigger; an invalid filter makes it refuse every event."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    problems: list[str] = []
    filter_spec = spec.get("filter")
    attributes = filter_spec.get("attributes") if isinstance(filter_spec, Mapping) else None
    filters = spec.get("filters")
    matcher: dialects.Filter
    try:
        matcher = trigger_filter.compile_trigger_filter(
            cast(Mapping[str, str] | None, attributes),
            cast(Sequence[Mapping[str, object]] | None, filters),
        )
    except trigger_filter.InvalidFilterError as exc:
        matcher = _REFUSE_ALL
        problems.append(f"invalid filter: {exc}")
    subscriber_uri = status.get("subscriberUri")
    if not isinstance(subscriber_uri, str) or not subscriber_uri.startswith(
        ("http://", "https://")
    ):
        subscriber_uri = ""
        problems.append("the subscriber is not resolved yet (no status.subscriberUri)")
    return Trigger(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        broker=str(spec.get("broker", "")),
        filter=matcher,
        subscriber_uri=subscriber_uri,
        problem="; ".join(problems),
    )


_REFUSE_ALL: dialects.Filter = dialects.Not(dialects.PassAll())


def key_of(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))
