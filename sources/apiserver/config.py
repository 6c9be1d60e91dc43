"""`K_SOURCE_CONFIG`: what the ApiServerSource adapter watches, in Knative's JSON shape.

    {"namespaces": ["ns1"], "allNamespaces": false,
     "resources": [{"gvr": {"Group": "", "Version": "v1", "Resource": "pods"},
                    "selector": "app=foo"}],
     "owner": {"apiVersion": "apps/v1", "kind": "ReplicaSet"},
     "mode": "Resource", "failFast": false}

`gvr` uses Go's field names (schema.GroupVersionResource has no json tags) and `selector` is a
label-selector string. Every problem is reported at once in one `errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from typing import Any

from kevents import errors

VAR = "K_SOURCE_CONFIG"


class Mode(enum.StrEnum):
    REFERENCE = "Reference"
    RESOURCE = "Resource"


@dataclasses.dataclass(frozen=True, slots=True)
class Resource:
    """One watched resource: group/version/plural and an optional label selector string."""

    group: str
    version: str
    resource: str
    selector: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        return (
            f"{self.resource}.{self.group}/{self.version}"
            if self.group
            else (f"{self.resource}/{self.version}")
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Owner:
    api_version: str
    kind: str


@dataclasses.dataclass(frozen=True, slots=True)
class SourceConfig:
    resources: tuple[Resource, ...]
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    owner: Owner | None = None
    mode: Mode = Mode.REFERENCE
    fail_fast: bool = False


_KEY = r"([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?"
_VALUE = r"([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?)?"
_REQUIREMENT = re.compile(
    rf"^\s*(?:!\s*{_KEY}|{_KEY}\s*(?:(?:==|=|!=)\s*{_VALUE}"
    rf"|\s+(?:in|notin)\s*\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\))?)\s*$"
)


def _split_requirements(selector: str) -> list[str]:
    """Split on commas that are not inside a `( ... )` value set."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def selector_problem(selector: str) -> str | None:
    """Why `selector` is not a valid label selector string, or None when it is."""
    if not selector.strip():
        return None
    for requirement in _split_requirements(selector):
        if not _REQUIREMENT.match(requirement):
            return f"malformed requirement {requirement.strip()!r} in selector {selector!r}"
    return None


def _resource(index: int, raw: Any, problems: list[str]) -> Resource | None:
    where = f"{VAR}: resources[{index}]"
    if not isinstance(raw, dict):
        problems.append(f"{where} must be an object")
        return None
    gvr = raw.get("gvr")
    if not isinstance(gvr, dict):
        problems.append(f"{where}.gvr must be an object with Group, Version, Resource")
        return None
    group, version, plural = gvr.get("Group", ""), gvr.get("Version", ""), gvr.get("Resource", "")
    if not all(isinstance(v, str) for v in (group, version, plural)):
        problems.append(f"{where}.gvr fields must be strings")
        return None
    if not version:
        problems.append(f"{where}.gvr.Version is required")
    if not plural:
        problems.append(f"{where}.gvr.Resource is required")
    selector = raw.get("selector") or ""
    if not isinstance(selector, str):
        problems.append(f"{where}.selector must be a label selector string")
        return None
    problem = selector_problem(selector)
    if problem:
        problems.append(f"{where}: {problem}")
    return Resource(group, version, plural, selector.strip())


def parse(raw: str) -> SourceConfig:
    """Parse and validate `K_SOURCE_CONFIG`; raise `errors.ConfigError` naming every problem."""
    if not raw.strip():
        raise errors.ConfigError([f"{VAR} is required (the controller sets it)"])
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise errors.ConfigError([f"{VAR} is not valid JSON: {exc}"]) from exc
    if not isinstance(doc, dict):
        raise errors.ConfigError([f"{VAR} must be a JSON object"])
    problems: list[str] = []
    raw_resources = doc.get("resources")
    resources: list[Resource] = []
    if not isinstance(raw_resources, list) or not raw_resources:
        problems.append(f"{VAR}: resources must be a non-empty list")
    else:
        for i, item in enumerate(raw_resources):
            res = _resource(i, item, problems)
            if res is not None:
                resources.append(res)
    namespaces = doc.get("namespaces") or []
    if not isinstance(namespaces, list) or not all(isinstance(n, str) and n for n in namespaces):
        problems.append(f"{VAR}: namespaces must be a list of namespace names")
        namespaces = []
    all_namespaces = doc.get("allNamespaces", False)
    if not isinstance(all_namespaces, bool):
        problems.append(f"{VAR}: allNamespaces must be true or false")
        all_namespaces = False
    if not namespaces and not all_namespaces:
        problems.append(f"{VAR}: give namespaces or set allNamespaces")
    mode_raw = doc.get("mode") or Mode.REFERENCE.value
    try:
        mode = Mode(mode_raw)
    except ValueError:
        problems.append(f"{VAR}: mode must be Reference or Resource, got {mode_raw!r}")
        mode = Mode.REFERENCE
    owner = None
    raw_owner = doc.get("owner")
    if raw_owner:
        if (
            not isinstance(raw_owner, dict)
            or not isinstance(raw_owner.get("apiVersion"), str)
            or not isinstance(raw_owner.get("kind"), str)
            or not raw_owner["apiVersion"]
            or not raw_owner["kind"]
        ):
            problems.append(f"{VAR}: owner needs apiVersion and kind strings")
        else:
            owner = Owner(raw_owner["apiVersion"], raw_owner["kind"])
    if problems:
        raise errors.ConfigError(problems)
    return SourceConfig(
        resources=tuple(resources),
        namespaces=tuple(dict.fromkeys(namespaces)),
        all_namespaces=all_namespaces,
        owner=owner,
        mode=mode,
        fail_fast=bool(doc.get("failFast", False)),
    )
