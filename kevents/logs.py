"""Logging setup: one root handler, JSON or text, with structured context fields.

Modules log through `logging.getLogger(__name__)` with lazy `%` args and `extra=` fields.
Known context fields (`CONTEXT_FIELDS`) are printed when present; the current trace and span
ids are added automatically. Values of fields whose name looks secret are redacted.
`RateLimitedSummary` turns what strangers can cause at will into one line per interval.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import IO

import orjson
from opentelemetry import trace

CONTEXT_FIELDS = (
    "component",
    "namespace",
    "object_name",
    "event_id",
    "event_type",
    "attempt",
    "status",
    "trace_id",
    "span_id",
)
"""`extra=` keys the formatters print; anything else passed in `extra` is ignored.
`object_name` is the Kubernetes object's name (`name` is reserved by `logging.LogRecord`)."""

_SECRET_MARKERS = ("authorization", "token", "secret", "password", "cookie", "signature")
REDACTED = "[redacted]"


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def redact(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of `headers` safe to log: values of secret-looking names replaced."""
    return {key: (REDACTED if is_secret(key) else value) for key, value in headers.items()}


class TraceContextFilter(logging.Filter):
    """Adds `trace_id`/`span_id` of the current OpenTelemetry span to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                record.trace_id = format(context.trace_id, "032x")
                record.span_id = format(context.span_id, "016x")
        return True


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {}
    for key in CONTEXT_FIELDS:
        value = record.__dict__.get(key)
        if value is not None and value != "":
            fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode("utf-8")


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value ...` for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        if not extras:
            return line
        head, sep, tail = line.partition("\n")  # keep tracebacks after the fields
        return f"{head} {extras}{sep}{tail}"


def setup(level: str = "INFO", fmt: str = "json", *, stream: IO[str] | None = None) -> None:
    """Configure the root logger once for this process (replaces previous handlers)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(TraceContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class RateLimitedSummary:
    """At most one log line per `interval` about one kind of occurrence, counted by reason.

    For what anyone can cause at will (a bad webhook signature, a malformed HTTP request): a
    line each would let them flood the logs and bury the rest. The first occurrence is logged
    at once; later ones are counted and reported together by the next line, written by the
    first `note()` after `interval` or by `flush()`, which `run()` calls every `interval`.
    Reasons must come from a bounded set; exact totals belong in a counter metric.
    """

    def __init__(
        self,
        log: logging.Logger,
        message: str,
        *,
        level: int = logging.WARNING,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`message` names the occurrence ("Refused webhooks"); the line adds the counts."""
        self._log = log
        self._message = message
        self._level = level
        self.interval = interval
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self._since: float | None = None  # when the last line was written

    def note(self, reason: str) -> None:
        """Count one occurrence; write the line now if none was written within `interval`."""
        self._counts[reason] += 1
        if self._since is None or self._clock() - self._since >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Write the counts not reported yet, if any."""
        if not self._counts:
            return
        now = self._clock()
        counts = ", ".join(f"{n} {reason}" for reason, n in sorted(self._counts.items()))
        if self._since is None:
            self._log.log(self._level, "%s: %s.", self._message, counts)
        else:
            self._log.log(
                self._level, "%s: %s in the last %.0f s.", self._message, counts, now - self._since
            )
        self._counts.clear()
        self._since = now

    async def run(self) -> None:
        """Flush every `interval` until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(self.interval)
                self.flush()
        finally:
            self.flush()
