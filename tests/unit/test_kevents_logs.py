"""Log formatting: JSON/text, context fields, trace ids, no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace

from kevents import logs


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_json_lines_carry_context_fields_and_not_unknown_extras() -> None:
    stream = io.StringIO()
    logs.setup("INFO", "json", stream=stream)
    logging.getLogger("kevents.test").info(
        "Sent event %s.",
        "e-1",
        extra={"namespace": "default", "object_name": "ping", "event_id": "e-1", "attempt": 2,
               "authorization": "Bearer abc"},
    )  # fmt: skip
    entry = json.loads(stream.getvalue())
    assert entry["message"] == "Sent event e-1."
    assert entry["level"] == "INFO"
    assert entry["logger"] == "kevents.test"
    assert (entry["namespace"], entry["object_name"], entry["event_id"], entry["attempt"]) == (
        "default", "ping", "e-1", 2,
    )  # fmt: skip
    assert "Bearer abc" not in stream.getvalue()
    assert entry["time"].endswith("+00:00")


@pytest.mark.usefixtures("restore_root_logger")
def test_level_filters() -> None:
    stream = io.StringIO()
    logs.setup("WARNING", "text", stream=stream)
    logging.getLogger("kevents.test").info("quiet")
    logging.getLogger("kevents.test").warning("loud")
    assert "quiet" not in stream.getvalue()
    assert "WARNING kevents.test: loud" in stream.getvalue()


@pytest.mark.usefixtures("restore_root_logger")
def test_text_format_appends_fields_and_keeps_traceback_after() -> None:
    stream = io.StringIO()
    logs.setup("INFO", "text", stream=stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("x").exception("Failed.", extra={"event_id": "e-9"})
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("ERROR x: Failed. event_id=e-9")
    assert rest[0].startswith("Traceback")


@pytest.mark.usefixtures("restore_root_logger")
def test_trace_ids_of_the_current_span_are_added() -> None:
    stream = io.StringIO()
    logs.setup("INFO", "json", stream=stream)
    context = trace.SpanContext(
        trace_id=0xABC, span_id=0xDEF, is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )  # fmt: skip
    with trace.use_span(trace.NonRecordingSpan(context)):
        logging.getLogger("x").info("inside")
    entry = json.loads(stream.getvalue())
    assert entry["trace_id"] == f"{0xABC:032x}"
    assert entry["span_id"] == f"{0xDEF:016x}"


def test_redact_hides_secret_headers() -> None:
    headers = {"Authorization": "Bearer t", "X-Hub-Signature-256": "sha256=..", "Ce-Id": "1",
               "X-GitHub-Token": "t"}  # fmt: skip
    assert logs.redact(headers) == {
        "Authorization": logs.REDACTED,
        "X-Hub-Signature-256": logs.REDACTED,
        "Ce-Id": "1",
        "X-GitHub-Token": logs.REDACTED,
    }


def test_rate_limited_summary_writes_one_line_per_interval_with_counts() -> None:
    now = [100.0]
    log = logging.getLogger("kevents.test.summary")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log.addHandler(handler)
    try:
        summary = logs.RateLimitedSummary(
            log, "Refused webhooks", interval=60.0, clock=lambda: now[0]
        )
        summary.note("mismatch")  # the first one is reported at once
        for reason in ["mismatch"] * 2000 + ["missing"] * 5:  # a flood within the minute
            now[0] += 0.01
            summary.note(reason)
        assert stream.getvalue().splitlines() == ["Refused webhooks: 1 mismatch."]
        now[0] = 160.0
        summary.note("malformed")  # a minute after the first line: the next one
        summary.flush()  # nothing left to report
        now[0] = 200.0
        summary.note("missing")
        summary.flush()
    finally:
        log.removeHandler(handler)
    assert stream.getvalue().splitlines() == [
        "Refused webhooks: 1 mismatch.",
        "Refused webhooks: 1 malformed, 2000 mismatch, 5 missing in the last 60 s.",
        "Refused webhooks: 1 missing in the last 40 s.",
    ]
