"""SubscriptionsAPI filter dialects (Knative `spec.filters`) as matchers.

`exact`, `prefix` and `suffix` compare the string form of each named attribute (a missing
attribute never matches); `all` needs every nested filter to match, `any` one of them, `not`
inverts; `cesql` matches when the expression evaluates to Boolean true without any error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol

from kevents.cesql import expression
from kevents.eventfilter import attributes

Event = attributes.Event


class Filter(Protocol):
    def matches(self, event: Event) -> bool: ...


@dataclasses.dataclass(frozen=True, slots=True)
class PassAll:
    """No filter: every event passes."""

    def matches(self, event: Event) -> bool:
        return True


@dataclasses.dataclass(frozen=True, slots=True)
class Exact:
    attributes: Mapping[str, str]

    def matches(self, event: Event) -> bool:
        for name, value in self.attributes.items():
            if attributes.lookup(event, name) != value:
                return False
        return True


@dataclasses.dataclass(frozen=True, slots=True)
class Prefix:
    attributes: Mapping[str, str]

    def matches(self, event: Event) -> bool:
        for name, prefix in self.attributes.items():
            value = attributes.lookup(event, name)
            if value is None or not value.startswith(prefix):
                return False
        return True


@dataclasses.dataclass(frozen=True, slots=True)
class Suffix:
    attributes: Mapping[str, str]

    def matches(self, event: Event) -> bool:
        for name, suffix in self.attributes.items():
            value = attributes.lookup(event, name)
            if value is None or not value.endswith(suffix):
                return False
        return True


@dataclasses.dataclass(frozen=True, slots=True)
class All:
    filters: tuple[Filter, ...]

    def matches(self, event: Event) -> bool:
        for nested in self.filters:
            if not nested.matches(event):
                return False
        return True


@dataclasses.dataclass(frozen=True, slots=True)
class Any:
    filters: tuple[Filter, ...]

    def matches(self, event: Event) -> bool:
        for nested in self.filters:
            if nested.matches(event):
                return True
        return False


@dataclasses.dataclass(frozen=True, slots=True)
class Not:
    filter: Filter

    def matches(self, event: Event) -> bool:
        return not self.filter.matches(event)


@dataclasses.dataclass(frozen=True, slots=True)
class Cesql:
    expression: expression.Expression

    def matches(self, event: Event) -> bool:
        return self.expression.matches(event)
