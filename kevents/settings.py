"""Settings read from the environment once, with every problem reported together.

`EnvReader` holds reusable field parsers: each reads one variable, records a problem naming
that variable instead of raising, and returns a placeholder so parsing continues.
`reader.check()` then raises one `ConfigError` listing everything wrong. Every deployable
builds its own frozen Settings the same way; `AdapterSettings` is the receive-adapter
contract of Knative (`knative/eventing:pkg/adapter/v2/config.go`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit

from kevents import errors, tracing

logger = logging.getLogger(__name__)

T = TypeVar("T")
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class EnvReader:
    """Reads typed values from an environment mapping, collecting problems by variable name."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.problems: list[str] = []

    def problem(self, name: str, message: str) -> None:
        self.problems.append(f"{name}: {message}")

    def check(self) -> None:
        """Raise one `ConfigError` listing every problem recorded so far."""
        if self.problems:
            raise errors.ConfigError(self.problems)

    def raw(self, name: str) -> str | None:
        """The value, or None when unset or blank."""
        value = self.environ.get(name)
        return value if value is not None and value.strip() else None

    def string(self, name: str, default: str = "", *, required: bool = False) -> str:
        value = self.raw(name)
        if value is None:
            if required:
                self.problem(name, "is required but not set")
            return default
        return value

    def integer(
        self,
        name: str,
        default: int,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value.strip())
        except ValueError:
            self.problem(name, f"must be an integer, got {value!r}")
            return default
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            self.problem(name, f"must be within [{minimum}, {maximum}], got {number}")
            return default
        return number

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value.strip())
        except ValueError:
            self.problem(name, f"must be a number, got {value!r}")
            return default
        if not minimum <= number <= maximum:
            self.problem(name, f"must be within [{minimum}, {maximum}], got {number}")
            return default
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        self.problem(name, f"must be true or false, got {value!r}")
        return default

    def choice(
        self, name: str, default: str, choices: tuple[str, ...], *, upper: bool = False
    ) -> str:
        value = self.raw(name)
        if value is None:
            return default
        text = value.strip().upper() if upper else value.strip().lower()
        if text not in choices:
            self.problem(name, f"must be one of {', '.join(choices)}, got {value!r}")
            return default
        return text

    def url(self, name: str, *, required: bool = False) -> str:
        """An absolute http(s) URL with a host."""
        value = self.raw(name)
        if value is None:
            if required:
                self.problem(name, "is required but not set (absolute http/https URL)")
            return ""
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem(name, f"must be an absolute http or https URL, got {value!r}")
            return ""
        return value.strip()

    def json_object(self, name: str) -> dict[str, object]:
        """A JSON object; unset or blank gives {}."""
        value = self.raw(name)
        if value is None:
            return {}
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.problem(name, f"is not valid JSON ({exc})")
            return {}
        if not isinstance(parsed, dict):
            self.problem(name, f"must be a JSON object, got {type(parsed).__name__}")
            return {}
        return parsed

    def parsed(self, name: str, parse: Callable[[str], T], default: T) -> T:
        """Run a custom parser; its `ValueError`/`ConfigError` messages become problems."""
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse(value)
        except errors.ConfigError as exc:
            self.problems.extend(p if p.startswith(name) else f"{name}: {p}" for p in exc.problems)
        except ValueError as exc:
            self.problem(name, str(exc))
        return default

    def tracing_config(
        self, name: str = "K_TRACING_CONFIG", directory_var: str = "KEVENTS_TRACING_DIR"
    ) -> tracing.TracingConfig:
        """Knative's `config-tracing` data: the JSON object in `name` (what the controller
        gives adapters), else the files of a mounted `config-tracing` ConfigMap in the folder
        named by `directory_var` (what the system Deployments mount); neither = tracing off."""
        data: dict[str, object] = self.json_object(name)
        folder = self.raw(directory_var)
        if not data and folder:
            path = pathlib.Path(folder)
            if path.is_dir():
                data = {
                    f.name: f.read_text().strip()
                    for f in path.iterdir()
                    if f.is_file() and not f.name.startswith(".")
                }
        try:
            return tracing.parse_config(data)
        except errors.ConfigError as exc:
            self.problems.extend(exc.problems)
            return tracing.TracingConfig()

    def ce_overrides(self, name: str = "K_CE_OVERRIDES") -> Mapping[str, str]:
        """Knative `{"extensions": {"key": "value"}}`; keys non-empty ASCII alphanumerics."""
        data = self.json_object(name)
        extensions = data.get("extensions", {})
        if extensions is None:
            return MappingProxyType({})
        if not isinstance(extensions, dict):
            self.problem(name, "'extensions' must be an object of string values")
            return MappingProxyType({})
        result: dict[str, str] = {}
        for key, value in extensions.items():
            if not key or not key.isascii() or not key.isalnum():
                self.problem(name, f"extension name {key!r} must be non-empty ASCII alphanumerics")
            elif not isinstance(value, str):
                self.problem(name, f"extension {key!r} must have a string value")
            else:
                result[key.lower()] = value
        return MappingProxyType(result)


def _sink_timeout(reader: EnvReader, name: str = "K_SINK_TIMEOUT") -> float | None:
    # Knative semantics: integer seconds; invalid or absent means no timeout (not an error).
    value = reader.raw(name)
    try:
        seconds = int(value) if value is not None else -1
    except ValueError:
        logger.warning("Ignoring %s=%r: not an integer number of seconds.", name, value)
        return None
    return float(seconds) if seconds > 0 else None


def _log_level(reader: EnvReader, component: str) -> str:
    # KEVENTS_LOG_LEVEL wins; else Knative's K_LOGGING_CONFIG "loglevel.<component>".
    if reader.raw("KEVENTS_LOG_LEVEL") is not None:
        return reader.choice("KEVENTS_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True)
    knative = reader.json_object("K_LOGGING_CONFIG").get(f"loglevel.{component}")
    if knative is None:
        return "INFO"
    level = str(knative).strip().upper()
    level = {"WARN": "WARNING", "FATAL": "CRITICAL", "PANIC": "CRITICAL", "DPANIC": "CRITICAL"}.get(
        level, level
    )
    if level not in LOG_LEVELS:
        reader.problem("K_LOGGING_CONFIG", f"loglevel.{component} is not a level, got {knative!r}")
        return "INFO"
    return level


@dataclasses.dataclass(frozen=True, slots=True)
class AdapterSettings:
    """The receive-adapter env contract shared by every source."""

    sink: str
    """K_SINK: absolute http(s) URL events are POSTed to. Required: a source without a sink is
    a misconfiguration, better crash-looping visibly than dropping events."""
    namespace: str
    """NAMESPACE: namespace of the source object; sent as `Kn-Namespace`. Required (Knative)."""
    name: str = "adapter"
    """NAME: source object name; Knative's default `adapter`."""
    ce_overrides: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """K_CE_OVERRIDES extensions set on every event; empty by default (no overrides)."""
    sink_timeout: float | None = None
    """K_SINK_TIMEOUT, seconds per attempt; None (unset/invalid/<=0) = as Knative, no timeout
    of the user's: the sender's default attempt timeout applies (kevents.transport, 60 s)."""
    source_config: str = ""
    """K_SOURCE_CONFIG, raw string parsed by the source itself."""
    ca_certs: str | None = None
    """K_CA_CERTS, PEM bundle trusted for an https sink in addition to the system CAs."""
    tracing_config: tracing.TracingConfig = dataclasses.field(default_factory=tracing.TracingConfig)
    """K_TRACING_CONFIG (config-tracing data as JSON); default backend none: tracing is opt-in."""
    log_format: str = "json"
    """KEVENTS_LOG_FORMAT json|text; json because pods' logs are read by collectors."""
    log_level: str = "INFO"
    """KEVENTS_LOG_LEVEL, else K_LOGGING_CONFIG `loglevel.<component>`; INFO shows state changes."""
    metrics_port: int = 9090
    """METRICS_PROMETHEUS_PORT, 1024-65535; 9090 is knative/pkg's default."""
    metrics_host: str = "0.0.0.0"
    """METRICS_PROMETHEUS_HOST; all interfaces so Prometheus can scrape the pod IP."""
    probes_port: int = 8080
    """KEVENTS_PROBES_PORT; 8080 is where Knative adapters serve /health and /readiness."""
    component: str = "adapter"
    """K_COMPONENT, names this process in logs, metrics and traces."""
    system_namespace: str = "knative-eventing"
    """SYSTEM_NAMESPACE, where the control plane lives; Knative's usual namespace."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AdapterSettings:
        reader = EnvReader(environ)
        component = reader.string("K_COMPONENT", "adapter")
        tracing_config = reader.tracing_config()
        settings = cls(
            sink=reader.url("K_SINK", required=True),
            namespace=reader.string("NAMESPACE", required=True),
            name=reader.string("NAME", "adapter"),
            ce_overrides=reader.ce_overrides(),
            sink_timeout=_sink_timeout(reader),
            source_config=reader.string("K_SOURCE_CONFIG"),
            ca_certs=reader.raw("K_CA_CERTS"),
            tracing_config=tracing_config,
            log_format=reader.choice("KEVENTS_LOG_FORMAT", "json", LOG_FORMATS),
            log_level=_log_level(reader, component),
            metrics_port=reader.integer(
                "METRICS_PROMETHEUS_PORT", 9090, minimum=1024, maximum=65535
            ),
            metrics_host=reader.string("METRICS_PROMETHEUS_HOST", "0.0.0.0"),
            probes_port=reader.integer("KEVENTS_PROBES_PORT", 8080, minimum=1, maximum=65535),
            component=component,
            system_namespace=reader.string("SYSTEM_NAMESPACE", "knative-eventing"),
        )
        reader.check()
        return settings


def load_or_exit(factory: Callable[[], T]) -> T:
    """Call a Settings factory; on `ConfigError` log every problem and exit with code 1."""
    try:
        return factory()
    except errors.ConfigError as exc:
        _exit_with(exc)


def _exit_with(exc: errors.ConfigError) -> NoReturn:
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    logger.error("Cannot start: %s", exc)
    sys.exit(1)
