"""InMemoryChannel objects -> served targets and the status the dispatcher reports."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher import channels
from dispatcher import settings as dispatcher_settings
from kevents import cloudevent, errors, retries


def _imc(
    subscribers: list[dict[str, Any]],
    delivery: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"subscribers": subscribers}
    if delivery is not None:
        spec["delivery"] = delivery
    return {
        "metadata": {"namespace": "ns", "name": "ch", "uid": "c-1"},
        "spec": spec,
        "status": status or {},
    }


SUB = {"uid": "u1", "generation": 2, "subscriberUri": "http://sub.ns.svc.cluster.local/"}


THROTTLED = retries.RetryPolicy(throttle_retry=retries.DEFAULT_THROTTLE_RETRY)
"""A delivery spec's policy without `retry`: throttling answers still get their retries."""


@pytest.mark.parametrize(
    ("entry", "delivery", "status", "expected"),
    [
        (
            SUB,
            None,
            None,
            {"policy": THROTTLED, "dead_letter_uri": "", "problem": ""},
        ),
        (
            {
                **SUB,
                "replyUri": "http://reply/",
                "delivery": {
                    "retry": 3,
                    "backoffPolicy": "linear",
                    "backoffDelay": "PT0.5S",
                    "timeout": "PT2S",
                    "retryAfterMax": "PT10S",
                    "format": "json",
                    "deadLetterSink": {"uri": "http://dls/"},
                },
            },
            None,
            None,
            {
                "policy": retries.RetryPolicy(
                    retry=3,
                    backoff_policy=retries.BackoffPolicy.LINEAR,
                    backoff_delay=0.5,
                    timeout=2.0,
                    retry_after_max=10.0,
                    throttle_retry=retries.DEFAULT_THROTTLE_RETRY,
                ),
                "reply_uri": "http://reply/",
                "dead_letter_uri": "http://dls/",
                "encoding": cloudevent.Encoding.STRUCTURED,
                "problem": "",
            },
        ),
        (
            SUB,
            {"retry": 2, "deadLetterSink": {"ref": {"kind": "Service", "name": "dls"}}},
            {"deadLetterSinkUri": "http://dls.ns.svc.cluster.local/"},
            {
                "policy": retries.RetryPolicy(
                    retry=2, throttle_retry=retries.DEFAULT_THROTTLE_RETRY
                ),
                "dead_letter_uri": "http://dls.ns.svc.cluster.local/",
                "problem": "",
            },
        ),
        (
            {**SUB, "delivery": {"deadLetterSink": {"ref": {"kind": "Service", "name": "d"}}}},
            None,
            None,
            {"dead_letter_uri": "", "problem": "deadLetterSink has no resolved absolute uri"},
        ),
        (
            {**SUB, "delivery": {"retry": -1, "backoffDelay": "1s"}},
            None,
            None,
            {"policy": retries.RetryPolicy(), "problem": "delivery.retry must be an integer"},
        ),
        (
            {"uid": "u1", "subscriberUri": "/relative"},
            None,
            None,
            {"subscriber_uri": "", "problem": "subscriberUri '/relative' is not an absolute"},
        ),
        (
            {"uid": "u1", "replyUri": "http://reply/"},
            None,
            None,
            {"subscriber_uri": "", "reply_uri": "http://reply/", "problem": ""},
        ),
    ],
    ids=[
        "plain",
        "own-delivery",
        "channel-delivery-with-status-dls",
        "unresolved-dls",
        "invalid-delivery",
        "relative-uri",
        "reply-only",
    ],
)
def test_target(
    entry: dict[str, Any],
    delivery: dict[str, Any] | None,
    status: dict[str, Any] | None,
    expected: dict[str, Any],
) -> None:
    (target,) = channels.parse(_imc([entry], delivery, status)).targets
    for field, value in expected.items():
        actual = getattr(target, field)
        if field == "problem" and value:
            assert value in actual
        else:
            assert actual == value, field


def test_status_marks_served_subscribers_ready_and_reports_problems() -> None:
    channel = channels.parse(
        _imc([SUB, {"uid": "u2", "generation": 5, "subscriberUri": "ftp://x"}, {"no": "uid"}])
    )
    assert [t.uid for t in channel.targets] == ["u1", "u2"]
    statuses = channels.statuses(channel)
    assert statuses[0] == {"uid": "u1", "observedGeneration": 2, "ready": "True"}
    assert statuses[1]["ready"] == "False"
    assert statuses[1]["observedGeneration"] == 5
    assert "not an absolute http(s) URL" in statuses[1]["message"]
    assert channels.needs_report(channel)
    reported = channels.parse(_imc([SUB], status={"subscribers": channels.statuses(channel)[:1]}))
    assert not channels.needs_report(reported)


def test_settings_defaults_and_problems() -> None:
    config = dispatcher_settings.DispatcherSettings.from_env({})
    assert (config.ingress_port, config.probes_port, config.metrics_port) == (8000, 8080, 9090)
    assert (config.workers, config.queue_size, config.subscriber_concurrency) == (1, 10_000, 64)
    assert dispatcher_settings.DispatcherSettings.from_env({}, workers=3).workers == 3
    with pytest.raises(errors.ConfigError) as caught:
        dispatcher_settings.DispatcherSettings.from_env(
            {"KEVENTS_QUEUE_SIZE": "0", "KEVENTS_SUBSCRIBER_CONCURRENCY": "x"}
        )
    text = str(caught.value)
    assert "KEVENTS_QUEUE_SIZE" in text
    assert "KEVENTS_SUBSCRIBER_CONCURRENCY" in text
