"""Attribute lookup as Knative's filters see it, and the legacy `filter.attributes` filter.

Filters compare string forms: a boolean extension is `true`/`false`, an integer its base-10
digits, a timestamp RFC 3339. `schemaurl` (CloudEvents 0.3's name) and `dataschema` (1.0's)
both read the event's data schema, whichever its version names it (Knative's filters read
`event.DataSchema()` for both), and `datamediatype` is the media type of `datacontenttype`
(lower case, without parameters).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from kevents.cesql import values

Event = Mapping[str, object]


_SCHEMA_NAMES = {"schemaurl": "dataschema", "dataschema": "schemaurl"}
"""The data schema's name in the other CloudEvents version (0.3 <-> 1.0)."""


def lookup(event: Event, name: str) -> str | None:
    """The string form of attribute `name`, or None when the event does not have it."""
    if name == "datamediatype":
        content_type = event.get("datacontenttype")
        if content_type is None:
            return None
        return values.canonical_string(content_type).split(";", 1)[0].strip().lower()
    value = event.get(name)
    if value is None:
        other = _SCHEMA_NAMES.get(name)  # only looked up for an attribute the event lacks
        value = None if other is None else event.get(other)
        if value is None:
            return None
    if value.__class__ is str:
        return value
    return values.canonical_string(value)


@dataclasses.dataclass(frozen=True, slots=True)
class Attributes:
    """Legacy Trigger `filter.attributes`: every attribute must equal its value exactly.

    An empty value means "any": the attribute must exist with a non-empty value. An attribute
    the event lacks never matches.
    """

    attributes: Mapping[str, str]

    def matches(self, event: Event) -> bool:
        for name, wanted in self.attributes.items():
            actual = lookup(event, name)
            if actual is None or (wanted == "" and actual == ""):
                return False
            if wanted != "" and actual != wanted:
                return False
        return True
