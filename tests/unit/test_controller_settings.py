"""ControllerSettings from the environment: defaults and every problem reported at once."""

from __future__ import annotations

import pytest

from controller import settings
from kevents import errors


def test_defaults() -> None:
    cfg = settings.ControllerSettings.from_env({"POD_NAME": "controller-0"})
    assert cfg.system_namespace == "kevents-system"
    assert cfg.identity == "controller-0"
    assert (cfg.metrics_port, cfg.probes_port, cfg.workers) == (9090, 8080, 4)


def test_all_problems_named() -> None:
    with pytest.raises(errors.ConfigError) as caught:
        settings.ControllerSettings.from_env({"CONTROLLER_WORKERS": "many", "METRICS_PORT": "-1"})
    text = str(caught.value)
    assert "CONTROLLER_WORKERS" in text and "METRICS_PORT" in text
