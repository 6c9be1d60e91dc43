"""A PingSource as the API server sends it, validated into the `Job` the adapter fires.

`problems(spec)` is the pure validation the controller's reconciler needs too (it cannot
import `sources`; the CRD's CEL rules cover only the simple cases): schedule and timezone
(`schedule.parse`), `contentType`, `data` vs `dataBase64` (exclusive), base64 that decodes,
and `application/json` data that is a JSON object, as Knative's `ping_validation.go`.

Which sources fire, as Knative's mtping adapter decides: only those whose sink the
controller resolved (`status.sinkUri`) and that are Ready (`Ready` True; a status with no
conditions at all counts as ready, for a sink patched in without a controller). A source
that turns not-ready stops firing (Knative's adapter keeps its old schedule).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypedDict
from urllib.parse import urlsplit

from sources.ping import schedule as schedule_mod


class CeOverrides(TypedDict, total=False):
    extensions: dict[str, str]


class PingSourceSpec(TypedDict, total=False):
    schedule: str
    timezone: str
    contentType: str
    data: str
    dataBase64: str
    sink: dict[str, Any]
    ceOverrides: CeOverrides


class Condition(TypedDict, total=False):
    type: str
    status: str
    reason: str
    message: str


class PingSourceStatus(TypedDict, total=False):
    sinkUri: str
    sinkCACerts: str
    observedGeneration: int
    conditions: list[Condition]


class PingSource(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    spec: PingSourceSpec
    status: PingSourceStatus


class SpecError(ValueError):
    """The PingSource is invalid; `problems` name each field, Knative style."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclasses.dataclass(frozen=True, slots=True)
class Payload:
    data: bytes | None
    """The event body: decoded `dataBase64`, else `data` as UTF-8; None when both empty."""
    content_type: str | None
    """`datacontenttype`, only when there is data (Knative sets none without data)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """One schedulable PingSource."""

    namespace: str
    name: str
    uid: str
    schedule: schedule_mod.Schedule
    sink: str
    payload: Payload
    extensions: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    created: float | None = None
    """`metadata.creationTimestamp` (epoch seconds): no catch-up tick from before it."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def source(self) -> str:
        """The CloudEvent `source`: Knative's `/apis/v1/namespaces/<ns>/pingsources/<name>`."""
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"


_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*(\s*;.*)?$")


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _json_object(raw: bytes | str) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


def decode_payload(spec: PingSourceSpec) -> Payload:
    """The body and content type sent at each tick; `SpecError` when invalid."""
    content_type = spec.get("contentType") or ""
    data, data64 = spec.get("data") or "", spec.get("dataBase64") or ""
    problems: list[str] = []
    if content_type and not _MEDIA_TYPE.match(content_type):
        problems.append(
            f"invalid value: {content_type!r}: spec.contentType (a media type like "
            "application/json)"
        )
    if data and data64:
        problems.append("expected exactly one, got both: spec.data, spec.dataBase64")
    body: bytes | None = None
    if data64:
        try:
            body = base64.b64decode(data64, validate=True)
        except (binascii.Error, ValueError):
            problems.append("invalid value: not standard base64: spec.dataBase64")
        else:
            if _is_json(content_type) and not _json_object(body):
                problems.append(
                    "invalid value: decoded data is not a JSON object (contentType is "
                    "application/json): spec.dataBase64"
                )
    elif data:
        body = data.encode()
        if _is_json(content_type) and not _json_object(data):
            problems.append(
                "invalid value: not a JSON object (contentType is application/json): spec.data"
            )
    if problems:
        raise SpecError(problems)
    return Payload(body, (content_type or None) if body is not None else None)


def problems(
    spec: PingSourceSpec,
    *,
    min_interval: float = schedule_mod.DEFAULT_MIN_INTERVAL,
    now: datetime.datetime | None = None,
) -> list[str]:
    """Everything wrong with a PingSource spec, each naming its field; [] when valid."""
    found: list[str] = []
    try:
        parse_schedule(spec, min_interval=min_interval, now=now)
    except SpecError as exc:
        found.extend(exc.problems)
    try:
        decode_payload(spec)
    except SpecError as exc:
        found.extend(exc.problems)
    return found


def parse_schedule(
    spec: PingSourceSpec, *, min_interval: float, now: datetime.datetime | None = None
) -> schedule_mod.Schedule:
    text = spec.get("schedule") or "* * * * *"  # Knative's default: every minute
    timezone = spec.get("timezone") or ""
    try:
        return schedule_mod.parse(text, timezone, min_interval=min_interval, now=now)
    except schedule_mod.ScheduleError as exc:
        field = "spec.timezone" if "time zone" in str(exc) and timezone else "spec.schedule"
        raise SpecError([f"invalid value: {exc}: {field}"]) from exc


def ready(status: PingSourceStatus) -> bool:
    """Ready True, or no Ready condition at all (sink resolved outside a controller)."""
    conditions = status.get("conditions") or []
    ready_condition = next((c for c in conditions if c.get("type") == "Ready"), None)
    return ready_condition is None or ready_condition.get("status") == "True"


def resolved_sink(status: PingSourceStatus) -> str | None:
    """`status.sinkUri` when it is an absolute http(s) URL and the source is ready."""
    uri = status.get("sinkUri") or ""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname or not ready(status):
        return None
    return uri


def _created(meta: Mapping[str, Any]) -> float | None:
    stamp = meta.get("creationTimestamp")
    if not stamp:
        return None
    return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def job_of(
    source: PingSource,
    *,
    min_interval: float = schedule_mod.DEFAULT_MIN_INTERVAL,
    now: datetime.datetime | None = None,
) -> Job | None:
    """The Job to schedule; None while the sink is unresolved; `SpecError` when invalid."""
    meta = source.get("metadata") or {}
    spec = source.get("spec") or PingSourceSpec()
    sink = resolved_sink(source.get("status") or PingSourceStatus())
    found: list[str] = []
    try:
        schedule = parse_schedule(spec, min_interval=min_interval, now=now)
    except SpecError as exc:
        found.extend(exc.problems)
    try:
        payload = decode_payload(spec)
    except SpecError as exc:
        found.extend(exc.problems)
    if found:
        raise SpecError(found)
    if sink is None:
        return None
    extensions = (spec.get("ceOverrides") or CeOverrides()).get("extensions") or {}
    return Job(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        schedule=schedule,
        sink=sink,
        payload=payload,
        extensions=MappingProxyType({str(k): str(v) for k, v in extensions.items()}),
        created=_created(meta),
    )
