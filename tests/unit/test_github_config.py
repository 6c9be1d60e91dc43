"""Settings of `python -m sources.github` from env: defaults, derivations, every problem at once."""

from __future__ import annotations

import pytest

from kevents import errors
from sources.github import config

BASE = {
    "K_SINK": "http://127.0.0.1:9/",
    "NAMESPACE": "default",
    "GITHUB_SECRET_TOKEN": "s3cr3t-value",
    "GITHUB_OWNER_REPO": "knative/eventing",
}


def test_upstream_env_is_enough() -> None:
    settings = config.Settings.from_env(BASE)
    assert settings.secret_token == b"s3cr3t-value"
    assert settings.source == "https://github.com/knative/eventing"
    assert settings.port == 8080
    assert settings.event_types == frozenset()
    assert settings.max_payload == 25 * 1024 * 1024
    assert settings.adapter.sink == "http://127.0.0.1:9/"
    # 8080 is also the adapter's probes port: the webhook server answers /health too
    assert settings.probes_shared


def test_secret_is_not_in_repr() -> None:
    assert "s3cr3t-value" not in repr(config.Settings.from_env(BASE))


def test_optional_values() -> None:
    settings = config.Settings.from_env(
        {
            **BASE,
            "GITHUB_EVENT_TYPES": "push, pull_request ,issues",
            "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
            "PORT": "8443",
            "KEVENTS_PROBES_PORT": "8081",
            "GITHUB_ACK_TIMEOUT": "2.5",
        }
    )
    assert settings.event_types == {"push", "pull_request", "issues"}
    assert settings.source == "https://ghe.example.com/knative/eventing"
    assert settings.port == 8443
    assert not settings.probes_shared
    assert settings.ack_timeout == 2.5


@pytest.mark.parametrize(
    ("api_url", "web_url"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://ghe.example.com/api/v3/", "https://ghe.example.com"),
        ("https://api.acme.ghe.com", "https://acme.ghe.com"),
        ("http://ghe.local:8080/api/v3", "http://ghe.local:8080"),
    ],
    ids=["github.com", "trailing-slash", "enterprise-server", "ghe.com", "port"],
)
def test_web_url_from_api_url(api_url: str, web_url: str) -> None:
    assert config.web_url(api_url) == web_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [("push", {"push"}), ("push,,issues ", {"push", "issues"}), ("*", set()), ("push,*", set())],
    ids=["one", "blanks", "wildcard", "wildcard-wins"],
)
def test_event_types(text: str, expected: set[str]) -> None:
    assert config.parse_event_types(text) == expected


def test_every_problem_reported_together() -> None:
    with pytest.raises(errors.ConfigError) as caught:
        config.Settings.from_env(
            {
                "K_SINK": "not a url",
                "GITHUB_OWNER_REPO": "not a repo!",
                "GITHUB_EVENT_TYPES": "push,Pull Request",
                "GITHUB_API_URL": "ghe.example.com",
                "PORT": "0",
                "GITHUB_QUEUE_SIZE": "zero",
                "GITHUB_MAX_PAYLOAD_BYTES": "2000000",
                "GITHUB_UNVERIFIED_BYTES": "1000000",
                "GITHUB_BODY_TIMEOUT": "never",
            }
        )
    text = str(caught.value)
    for name in (
        "K_SINK", "NAMESPACE", "GITHUB_SECRET_TOKEN", "GITHUB_OWNER_REPO", "GITHUB_EVENT_TYPES",
        "GITHUB_API_URL", "PORT", "GITHUB_QUEUE_SIZE", "GITHUB_UNVERIFIED_BYTES",
        "GITHUB_BODY_TIMEOUT",
    ):  # fmt: skip
        assert name in text, name
    assert "Pull Request" in text


def test_unverified_bytes_must_hold_one_largest_payload() -> None:
    defaults = config.Settings.from_env(BASE)
    assert defaults.unverified_bytes >= defaults.max_payload
    with pytest.raises(errors.ConfigError) as caught:
        config.Settings.from_env(
            {**BASE, "GITHUB_MAX_PAYLOAD_BYTES": "2000000", "GITHUB_UNVERIFIED_BYTES": "1999999"}
        )
    assert "GITHUB_UNVERIFIED_BYTES: must be at least GITHUB_MAX_PAYLOAD_BYTES" in str(caught.value)
