"""AdapterSettings from the Knative env contract; every problem reported at once, by name."""

from __future__ import annotations

import logging
import pathlib

import pytest

from kevents import errors, settings, tracing

MINIMAL = {"K_SINK": "http://sink.default.svc.cluster.local", "NAMESPACE": "default"}


def test_minimal_env_gives_documented_defaults() -> None:
    s = settings.AdapterSettings.from_env(MINIMAL)
    assert s.sink == "http://sink.default.svc.cluster.local"
    assert s.namespace == "default"
    assert s.name == "adapter"
    assert dict(s.ce_overrides) == {}
    assert s.sink_timeout is None
    assert s.source_config == ""
    assert s.ca_certs is None
    assert s.tracing_config == tracing.TracingConfig()
    assert (s.log_format, s.log_level) == ("json", "INFO")
    assert (s.metrics_port, s.metrics_host, s.probes_port) == (9090, "0.0.0.0", 8080)
    assert s.component == "adapter"
    assert s.system_namespace == "knative-eventing"


def test_full_env_is_read() -> None:
    env = {
        **MINIMAL,
        "NAME": "my-source",
        "K_CE_OVERRIDES": '{"extensions":{"team":"blue","Tier2":"gold"}}',
        "K_SINK_TIMEOUT": "15",
        "K_SOURCE_CONFIG": '{"mode":"Resource"}',
        "K_CA_CERTS": "-----BEGIN CERTIFICATE-----\n...",
        "K_TRACING_CONFIG": '{"backend":"zipkin","zipkin-endpoint":"http://z:9411/api/v2/spans",'
        '"sample-rate":"0.5","debug":"false"}',
        "KEVENTS_LOG_FORMAT": "text",
        "KEVENTS_LOG_LEVEL": "debug",
        "METRICS_PROMETHEUS_PORT": "9092",
        "KEVENTS_PROBES_PORT": "8081",
        "K_COMPONENT": "apiserversource",
        "SYSTEM_NAMESPACE": "kevents-system",
    }
    s = settings.AdapterSettings.from_env(env)
    assert s.name == "my-source"
    assert dict(s.ce_overrides) == {"team": "blue", "tier2": "gold"}
    assert s.sink_timeout == 15.0
    assert s.source_config == '{"mode":"Resource"}'
    assert s.ca_certs is not None and s.ca_certs.startswith("-----BEGIN")
    assert s.tracing_config == tracing.TracingConfig(
        tracing.Backend.ZIPKIN, "http://z:9411/api/v2/spans", 0.5, False
    )
    assert (s.log_format, s.log_level) == ("text", "DEBUG")
    assert (s.metrics_port, s.probes_port) == (9092, 8081)
    assert s.component == "apiserversource"
    assert s.system_namespace == "kevents-system"


def test_every_problem_is_reported_together_with_its_variable() -> None:
    env = {
        "K_SINK": "sink.default.svc",
        "K_CE_OVERRIDES": '{"extensions":{"bad-key":"x","ok":1}}',
        "K_TRACING_CONFIG": '{"backend":"jaeger","sample-rate":"2"}',
        "KEVENTS_LOG_FORMAT": "xml",
        "METRICS_PROMETHEUS_PORT": "80",
        "KEVENTS_PROBES_PORT": "http",
    }
    with pytest.raises(errors.ConfigError) as caught:
        settings.AdapterSettings.from_env(env)
    problems = caught.value.problems
    text = str(caught.value)
    expected_names = [
        "K_SINK",
        "NAMESPACE",
        "K_CE_OVERRIDES: extension name 'bad-key'",
        "K_CE_OVERRIDES: extension 'ok'",
        "K_TRACING_CONFIG: backend",
        "K_TRACING_CONFIG: sample-rate",
        "KEVENTS_LOG_FORMAT",
        "METRICS_PROMETHEUS_PORT",
        "KEVENTS_PROBES_PORT",
    ]
    for name in expected_names:
        assert any(p.startswith(name) for p in problems), name
    assert len(problems) == len(expected_names)
    assert text.startswith(f"{len(expected_names)} configuration problems")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("30", 30.0), ("0", None), ("-1", None), ("soon", None), ("", None), ("1.5", None)],
    ids=["seconds", "zero", "negative", "garbage", "empty", "fraction"],
)
def test_sink_timeout_invalid_or_absent_means_no_timeout(raw: str, expected: float | None) -> None:
    s = settings.AdapterSettings.from_env({**MINIMAL, "K_SINK_TIMEOUT": raw})
    assert s.sink_timeout == expected


@pytest.mark.parametrize(
    "sink",
    ["ftp://example.com", "/relative/path", "http://", "example.com:8080"],
    ids=["scheme", "relative", "no-host", "no-scheme"],
)
def test_sink_must_be_absolute_http_url(sink: str) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        settings.AdapterSettings.from_env({**MINIMAL, "K_SINK": sink})
    assert caught.value.problems[0].startswith("K_SINK: must be an absolute http or https URL")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("not json", "K_CE_OVERRIDES: is not valid JSON"),
        ('["a"]', "K_CE_OVERRIDES: must be a JSON object"),
        ('{"extensions":"x"}', "K_CE_OVERRIDES: 'extensions' must be an object"),
        ('{"extensions":{"":"x"}}', "K_CE_OVERRIDES: extension name ''"),
        ('{"extensions":{"caf\u00e9":"x"}}', "K_CE_OVERRIDES: extension name 'caf\u00e9'"),
    ],
    ids=["json", "array", "extensions-type", "empty-key", "non-ascii"],
)
def test_ce_overrides_errors(raw: str, problem: str) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        settings.AdapterSettings.from_env({**MINIMAL, "K_CE_OVERRIDES": raw})
    assert caught.value.problems[0].startswith(problem)


@pytest.mark.parametrize("raw", ["", '{"extensions":null}', "{}"], ids=["empty", "null", "none"])
def test_ce_overrides_empty_forms(raw: str) -> None:
    s = settings.AdapterSettings.from_env({**MINIMAL, "K_CE_OVERRIDES": raw})
    assert dict(s.ce_overrides) == {}


@pytest.mark.parametrize(
    ("env", "level"),
    [
        ({"K_LOGGING_CONFIG": '{"loglevel.ping":"debug"}'}, "DEBUG"),
        ({"K_LOGGING_CONFIG": '{"loglevel.ping":"warn"}'}, "WARNING"),
        ({"K_LOGGING_CONFIG": '{"loglevel.other":"debug"}'}, "INFO"),
        (
            {"K_LOGGING_CONFIG": '{"loglevel.ping":"debug"}', "KEVENTS_LOG_LEVEL": "error"},
            "ERROR",
        ),
    ],
    ids=["knative-config", "zap-warn", "other-component", "explicit-wins"],
)
def test_log_level_sources(env: dict[str, str], level: str) -> None:
    s = settings.AdapterSettings.from_env({**MINIMAL, "K_COMPONENT": "ping", **env})
    assert s.log_level == level


def test_reader_is_reusable_for_other_deployables() -> None:
    reader = settings.EnvReader({"WORKERS": "0", "RATE": "0.5", "ENABLED": "maybe"})
    workers = reader.integer("WORKERS", 4, minimum=1, maximum=64)
    rate = reader.number("RATE", 1.0, minimum=0.0, maximum=1.0)
    enabled = reader.boolean("ENABLED", False)
    grace = reader.parsed("GRACE", float, 25.0)
    assert (workers, rate, enabled, grace) == (4, 0.5, False, 25.0)
    assert reader.problems == [
        "WORKERS: must be within [1, 64], got 0",
        "ENABLED: must be true or false, got 'maybe'",
    ]
    with pytest.raises(errors.ConfigError):
        reader.check()


def test_parsed_field_turns_parser_errors_into_named_problems() -> None:
    reader = settings.EnvReader({"GRACE": "PT5X", "LIMIT": "lots"})
    from kevents import retries

    reader.parsed("GRACE", retries.parse_duration, 0.0)
    reader.parsed("LIMIT", int, 0)
    assert reader.problems[0].startswith("GRACE: invalid ISO-8601 duration 'PT5X'")
    assert reader.problems[1].startswith("LIMIT: invalid literal")


def test_load_or_exit_logs_every_problem_and_exits_1(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    with pytest.raises(SystemExit) as caught:
        settings.load_or_exit(lambda: settings.AdapterSettings.from_env({}))
    assert caught.value.code == 1
    assert "K_SINK: is required" in caplog.text
    assert "NAMESPACE: is required" in caplog.text


def test_load_or_exit_returns_settings_when_valid() -> None:
    s = settings.load_or_exit(lambda: settings.AdapterSettings.from_env(MINIMAL))
    assert s.namespace == "default"


def test_tracing_config_from_a_mounted_configmap_folder(tmp_path: pathlib.Path) -> None:
    (tmp_path / "backend").write_text("zipkin")
    (tmp_path / "zipkin-endpoint").write_text("http://zipkin.kevents-system:9411/api/v2/spans\n")
    (tmp_path / "sample-rate").write_text("1.0")
    reader = settings.EnvReader({"KEVENTS_TRACING_DIR": str(tmp_path)})
    config = reader.tracing_config()
    reader.check()
    assert config.backend is tracing.Backend.ZIPKIN
    assert config.zipkin_endpoint == "http://zipkin.kevents-system:9411/api/v2/spans"
    assert config.sample_rate == 1.0


def test_tracing_json_env_wins_over_the_folder(tmp_path: pathlib.Path) -> None:
    (tmp_path / "backend").write_text("zipkin")
    reader = settings.EnvReader(
        {"KEVENTS_TRACING_DIR": str(tmp_path), "K_TRACING_CONFIG": '{"backend": "none"}'}
    )
    assert reader.tracing_config().backend is tracing.Backend.NONE
