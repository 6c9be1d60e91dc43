"""The heartbeats sample: flags, period parsing and the event it sends."""

from __future__ import annotations

import pytest

from kevents import errors
from sources.container.heartbeat import beat

ENV = {"POD_NAME": "hb-1", "POD_NAMESPACE": "demo", "K_SINK": "http://sink.demo.svc/"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("10", 10.0), ("1m30s", 90.0), ("500ms", 0.5), ("1.5h", 5400.0), ("", 5.0)],
    ids=["go-seconds", "integer", "compound", "millis", "fractional-hours", "empty-default"],
)
def test_period(text: str, seconds: float) -> None:
    assert beat.parse_period(text) == seconds


@pytest.mark.parametrize("text", ["5x", "s", "-1s", "0s", "1s2"], ids=str)
def test_bad_period(text: str) -> None:
    with pytest.raises(ValueError, match="period"):
        beat.parse_period(text)


def test_event_matches_the_knative_sample() -> None:
    options = beat.parse_args(["--label", '"hi"', "--period", "1"], ENV)
    event = beat.event(options, 3)
    assert event.get_type() == "dev.knative.eventing.samples.heartbeat"
    assert event.get_source() == "https://knative.dev/eventing-contrib/cmd/heartbeats/#demo/hb-1"
    assert event.get_extension("the") == 42
    assert event.get_extension("heart") == "yes"
    assert event.get_extension("beats") is True
    assert event.get_data() == {"id": 3, "label": "hi"}
    assert event.get_datacontenttype() == "application/json"


def test_flags_msg_type_and_overrides() -> None:
    env = {**ENV, "K_CE_OVERRIDES": '{"extensions": {"team": "core"}}'}
    options = beat.parse_args(["--eventType", "my.type", "--msg", "hello"], env)
    event = beat.event(options, 1)
    assert event.get_type() == "my.type"
    assert event.get_data() == {"id": 1, "label": "", "msg": "hello"}
    assert event.get_extension("team") == "core"


def test_missing_pod_env_and_sink_reported_together() -> None:
    with pytest.raises(errors.ConfigError) as info:
        beat.parse_args(["--period", "soon"], {})
    text = str(info.value)
    for name in ("POD_NAME", "POD_NAMESPACE", "K_SINK", "--period"):
        assert name in text
