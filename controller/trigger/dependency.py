"""The `knative.dev/dependency` annotation of a Trigger (pure): a JSON KReference
(`{"kind", "name", "apiVersion"}`) to an object, usually a source, whose Ready the Trigger
waits for (DependencyReady). It lives in the Trigger's namespace."""

from __future__ import annotations

import json
from dataclasses import dataclass

ANNOTATION = "knative.dev/dependency"


@dataclass(frozen=True, slots=True)
class Dependency:
    api_version: str
    kind: str
    name: str


class DependencyError(ValueError):
    """The annotation is not a usable reference."""


def parse(raw: str) -> Dependency:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise DependencyError(str(exc)) from exc
    if not isinstance(value, dict):
        raise DependencyError("expected a JSON object with kind, name and apiVersion")
    missing = [k for k in ("kind", "name", "apiVersion") if not value.get(k)]
    if missing:
        raise DependencyError(f"missing field(s): {', '.join(missing)}")
    return Dependency(str(value["apiVersion"]), str(value["kind"]), str(value["name"]))
