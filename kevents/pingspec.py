"""The rules of a PingSource spec: the one rule set the reconciler, the ping adapter and the
admission webhook call, so that Ready (or "accepted") means the source will fire.

```
check(spec)     -> Checked (schedule, payload)  or InvalidSpecError(problems)  reconciler, adapter
problems(spec)  -> [FieldError]                 [] when valid                   admission webhook
```

Rules (knative/eventing `ping_validation.go` unless said otherwise):
- `schedule` (default `* * * * *`) and `timezone`: `kevents.schedules` (robfig syntax; never
  `@every`; must fire within five years; a seconds field at most every `min_interval`);
- `data` and `dataBase64` are exclusive ("expected exactly one, got both");
- `dataBase64` is standard, padded base64;
- with a JSON `contentType` (`application/json`, any case, parameters allowed; Knative
  compares the exact string) the data, or the decoded `dataBase64`, is a JSON object;
- `data` / `dataBase64` no longer than `data_max_size` (Knative's `config-ping-defaults`
  `data-max-size`, raw length, default -1 = unlimited);
- `contentType` is a media type (`type/subtype; param=value`): it becomes the
  `Content-Type` header of every tick. Knative does not check it.

Each `FieldError` names its field path (`spec.schedule: ...`), as Knative's field errors do.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kevents import schedules

DEFAULT_SCHEDULE = "* * * * *"
"""Knative's default: every minute."""
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"(?:[^\"\\\r\n]|\\.)*\"))*"
)
"""RFC 9110 `media-type`; no CR/LF can reach the header."""


@dataclasses.dataclass(frozen=True, slots=True)
class FieldError:
    path: str
    """The field at fault, e.g. `spec.schedule` or `spec.data, spec.dataBase64`."""
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidSpecError(ValueError):
    """The spec breaks the rules; `problems` lists every one."""

    def __init__(self, problems: Sequence[FieldError]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(map(str, self.problems)))


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """The tunable rules. Every caller uses `DEFAULTS` in production, so the controller's
    Ready and the adapter's firing agree; tests of real-time firing lower `min_interval`."""

    min_interval: float = schedules.MIN_INTERVAL
    """Seconds between fires of a seconds field, at least."""
    data_max_size: int = -1
    """Bytes of `data` / `dataBase64` as written, at most; -1 = unlimited (Knative)."""


DEFAULTS = Limits()


@dataclasses.dataclass(frozen=True, slots=True)
class Payload:
    data: bytes | None
    """The event body: decoded `dataBase64`, else `data` as UTF-8; None when both empty."""
    content_type: str | None
    """`datacontenttype`, only when there is data (Knative sets none without data)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Checked:
    schedule: schedules.Schedule
    payload: Payload


def _string(spec: Mapping[str, Any], name: str, path: str, found: list[FieldError]) -> str:
    value = spec.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        found.append(FieldError(f"{path}.{name}", f"expected a string, got {value!r}"))
        return ""
    return value


def is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _json_object(raw: bytes) -> bool:
    """Go's `json.Unmarshal` into a map: an object, or `null`."""
    try:
        parsed = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        return False
    return parsed is None or isinstance(parsed, dict)


def _schedule(
    spec: Mapping[str, Any], path: str, now: datetime.datetime, limits: Limits,
    found: list[FieldError],
) -> schedules.Schedule | None:  # fmt: skip
    text = _string(spec, "schedule", path, found) or DEFAULT_SCHEDULE
    zone = _string(spec, "timezone", path, found)
    try:
        return schedules.parse(text, zone, now=now, min_interval=limits.min_interval)
    except schedules.ScheduleError as exc:
        found.append(FieldError(f"{path}.{exc.field}", exc.message))
        return None


def _payload(
    spec: Mapping[str, Any], path: str, limits: Limits, found: list[FieldError]
) -> Payload:
    content_type = _string(spec, "contentType", path, found)
    data = _string(spec, "data", path, found)
    data64 = _string(spec, "dataBase64", path, found)
    if content_type and not _MEDIA_TYPE.fullmatch(content_type):
        found.append(FieldError(f"{path}.contentType", f"invalid media type {content_type!r}: "
                                "expected type/subtype, e.g. application/json"))  # fmt: skip
    if data and data64:
        found.append(FieldError(f"{path}.data, {path}.dataBase64",
                                "expected exactly one, got both"))  # fmt: skip
        return Payload(None, None)
    name, written = ("dataBase64", data64) if data64 else ("data", data)
    if not written:
        return Payload(None, None)
    where = f"{path}.{name}"
    size = len(written.encode())
    if -1 < limits.data_max_size < size:
        found.append(FieldError(where, f"the {name} length of {size} bytes exceeds limit set "
                                       f"at {limits.data_max_size}"))  # fmt: skip
    body = written.encode()
    if data64:
        try:
            body = base64.b64decode(data64, validate=True)
        except (binascii.Error, ValueError) as exc:
            found.append(FieldError(where, f"illegal base64 data: {exc}"))
            return Payload(None, None)
    if is_json(content_type) and not _json_object(body):
        decoded = "decoded data" if data64 else "data"
        found.append(FieldError(where, f"{decoded} is not a JSON object (contentType is "
                                       f"{content_type})"))  # fmt: skip
    return Payload(body, content_type or None)


def check(
    spec: Mapping[str, Any], *, now: datetime.datetime | None = None,
    limits: Limits = DEFAULTS, path: str = "spec",
) -> Checked:  # fmt: skip
    """The schedule and the payload each tick sends; `InvalidSpecError` lists every problem
    (the `sink` aside). `now` (aware, default the current time) anchors the "fires within
    five years" rule."""
    found: list[FieldError] = []
    when = now if now is not None else datetime.datetime.now(datetime.UTC)
    schedule = _schedule(spec, path, when, limits, found)
    payload = _payload(spec, path, limits, found)
    if found or schedule is None:
        raise InvalidSpecError(found)
    return Checked(schedule, payload)


def problems(
    spec: Mapping[str, Any], *, now: datetime.datetime | None = None,
    limits: Limits = DEFAULTS, path: str = "spec",
) -> list[FieldError]:  # fmt: skip
    """Everything `check` refuses, in field order; [] when the spec is valid."""
    try:
        check(spec, now=now, limits=limits, path=path)
    except InvalidSpecError as exc:
        return list(exc.problems)
    return []
