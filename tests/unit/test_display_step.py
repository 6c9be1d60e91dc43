"""The examples' workflow step (`display.step`): what it answers to each event, its settings."""

from __future__ import annotations

import pytest

from display import step
from kevents import cloudevent, errors

EVENT = cloudevent.build(
    "dev.example.build", "/ci", b"build 7", id="e1", datacontenttype="text/plain",
    extensions={"buildstatus": "pass"},
)  # fmt: skip


def test_a_step_appends_its_text_and_sets_its_extensions_keeping_the_rest() -> None:
    config = step.StepSettings(append=" | tested", extensions={"teststatus": "pass"})
    status, reply = step.answer(config, EVENT)
    assert status == 200
    assert reply is not None
    assert reply.get_data() == b"build 7 | tested"
    attributes = reply.get_attributes()
    assert (attributes["id"], attributes["type"], attributes["buildstatus"]) == (
        "e1", "dev.example.build", "pass",
    )  # fmt: skip
    assert attributes["teststatus"] == "pass"
    assert attributes.get("time") == EVENT.get_attributes().get("time")


@pytest.mark.parametrize(
    ("config", "status"),
    [
        (step.StepSettings(filter=("buildstatus", "pass")), 200),
        (step.StepSettings(filter=("buildstatus", "fail")), 202),
        (step.StepSettings(fail_when=("buildstatus", "pass")), 500),
        (step.StepSettings(fail_when=("buildstatus", "fail")), 200),
    ],
    ids=["filter-match", "filter-miss", "fails", "does-not-fail"],
)
def test_filter_and_failure_decide_the_answer(config: step.StepSettings, status: int) -> None:
    code, reply = step.answer(config, EVENT)
    assert code == status
    assert (reply is not None) == (status == 200)


def test_settings_report_every_bad_variable_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEP_EXTENSIONS", "ok=1,broken")
    monkeypatch.setenv("STEP_FILTER", "a=1,b=2")
    monkeypatch.setenv("PORT", "0")
    with pytest.raises(errors.ConfigError) as caught:
        step.StepSettings.from_env()
    text = str(caught.value)
    assert "STEP_EXTENSIONS" in text and "STEP_FILTER" in text and "PORT" in text
