"""Validate and compile a Trigger's filter, choosing the dialect the way Knative does.

`spec.filters` (SubscriptionsAPI) wins when it is non-empty; otherwise `spec.filter.attributes`
applies; with neither, every event passes. `validate()` reports every problem as a readable
message that starts with its field path, e.g.
`spec.filters[1].cesql: parse error at column 7: unexpected '='`. The same checks serve
any object with SubscriptionsAPI filters (pass its own `path`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from kevents.cesql import errors as cesql_errors
from kevents.cesql import expression
from kevents.eventfilter import attributes, dialects

# Knative: "Only allow lowercase alphanumeric, starting with letters."
ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9]*")
DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")
_NAME_RULE = "must start with a lowercase letter and contain only lowercase letters and digits"


class InvalidFilterError(ValueError):
    """The filter spec is invalid; `problems` lists every message."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def _attribute_map(value: object, path: str, dialect: bool) -> list[str]:
    """`filter.attributes` (`dialect` False: any number of names, "" = any value) or an
    exact/prefix/suffix dialect (one or more names, all must match, values not empty: the
    matchers refuse an empty one, as Knative's `NewExactFilter`)."""
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return [f"{path}: must be a map of attribute names to strings"]
    problems = []
    if dialect and not value:
        problems.append(f"{path}: must have at least one key-value")
    for name, wanted in value.items():
        if ATTRIBUTE_NAME.fullmatch(name) is None:
            problems.append(f"{path}[{name}]: invalid attribute name {name!r}: {_NAME_RULE}")
        if dialect and wanted == "":
            problems.append(f"{path}[{name}]: value must not be empty")
    return problems


def _filter_list(value: object, path: str) -> list[str]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return [f"{path}: must be a list of filters"]
    if not value:
        return [f"{path}: must contain at least one nested filter"]
    problems = []
    for index, item in enumerate(value):
        problems.extend(_filter(item, f"{path}[{index}]"))
    return problems


def _filter(spec: object, path: str) -> list[str]:
    if not isinstance(spec, Mapping):
        return [f"{path}: must be a filter object"]
    present = [name for name in DIALECTS if spec.get(name) is not None]
    if len(present) != 1:
        found = ", ".join(present) if present else "none"
        return [f"{path}: exactly one of {', '.join(DIALECTS)} must be set, found {found}"]
    dialect = present[0]
    value, where = spec[dialect], f"{path}.{dialect}"
    if dialect in ("exact", "prefix", "suffix"):
        return _attribute_map(value, where, dialect=True)
    if dialect in ("all", "any"):
        return _filter_list(value, where)
    if dialect == "not":
        return _filter(value, where)
    if not isinstance(value, str) or not value.strip():
        return [f"{where}: must be a non-empty CESQL expression"]
    try:
        expression.compile(value)
    except cesql_errors.ParseError as exc:
        return [f"{where}: {exc}"]
    return []


def validate(
    filter_attributes: object = None, filters: object = None, *, path: str = "spec"
) -> list[str]:
    """Every problem of a filter spec (empty when valid), each prefixed with its field path."""
    problems = []
    if filter_attributes is not None:
        problems.extend(
            _attribute_map(filter_attributes, f"{path}.filter.attributes", dialect=False)
        )
    if filters is not None:
        if not isinstance(filters, Sequence) or isinstance(filters, str):
            problems.append(f"{path}.filters: must be a list of filters")
        else:
            for index, item in enumerate(filters):
                problems.extend(_filter(item, f"{path}.filters[{index}]"))
    return problems


def _string_map(value: object) -> dict[str, str]:
    assert isinstance(value, Mapping)
    return {str(name): str(wanted) for name, wanted in value.items()}


def _specs(value: object) -> list[Mapping[str, object]]:
    assert isinstance(value, Sequence)
    return [item for item in value if isinstance(item, Mapping)]


def compile_filter(spec: Mapping[str, object]) -> dialects.Filter:
    """The matcher of one validated SubscriptionsAPI filter object."""
    dialect = next(name for name in DIALECTS if spec.get(name) is not None)
    value = spec[dialect]
    if dialect == "exact":
        return dialects.Exact(_string_map(value))
    if dialect == "prefix":
        return dialects.Prefix(_string_map(value))
    if dialect == "suffix":
        return dialects.Suffix(_string_map(value))
    if dialect in ("all", "any"):
        nested = tuple(compile_filter(item) for item in _specs(value))
        return dialects.All(nested) if dialect == "all" else dialects.Any(nested)
    if dialect == "not":
        assert isinstance(value, Mapping)
        return dialects.Not(compile_filter(value))
    return dialects.Cesql(expression.compile(str(value)))


def compile_filters(filters: Sequence[Mapping[str, object]]) -> dialects.Filter:
    """All of `filters` must match (validated input)."""
    compiled = tuple(compile_filter(spec) for spec in filters)
    return compiled[0] if len(compiled) == 1 else dialects.All(compiled)


def compile_trigger_filter(
    filter_attributes: Mapping[str, str] | None,
    filters: Sequence[Mapping[str, object]] | None,
    *,
    path: str = "spec",
) -> dialects.Filter:
    """The Trigger's matcher; raises `InvalidFilterError` listing every problem.

    `filters` wins when non-empty, else `filter.attributes`, else every event passes.
    """
    problems = validate(filter_attributes, filters, path=path)
    if problems:
        raise InvalidFilterError(problems)
    if filters:
        return compile_filters(filters)
    if filter_attributes:
        return attributes.Attributes(dict(filter_attributes))
    return dialects.PassAll()
