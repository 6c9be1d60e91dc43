"""Settings of `python -m sources.github`: one process serves one GitHubSource.

Upstream's env (`knative-extensions/eventing-github:pkg/adapter/adapter.go`):
`GITHUB_SECRET_TOKEN` (required), `GITHUB_OWNER_REPO` (required), `PORT` (8080), plus the
Knative adapter contract (`K_SINK`, `NAMESPACE`, `K_CE_OVERRIDES`, ... see
`kevents.settings.AdapterSettings`). The rest is ours and optional; the controller sets
`GITHUB_EVENT_TYPES` from `spec.eventTypes` and `GITHUB_API_URL` from `spec.githubAPIURL`.
Every problem, in either group, is reported together.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from kevents import errors, settings
from sources.github import events

MIB = 1024 * 1024
_OWNER_REPO = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*)(?:/[A-Za-z0-9._-]+)?")


def parse_event_types(text: str) -> frozenset[str]:
    """`push, pull_request` -> {"push", "pull_request"}; `*` (GitHub's wildcard) = all."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    bad = sorted(n for n in names if n != "*" and not events.EVENT_NAME.fullmatch(n))
    if bad:
        raise ValueError(f"not GitHub event names: {', '.join(bad)} (e.g. push,pull_request)")
    return frozenset() if "*" in names else frozenset(names)


def web_url(api_url: str) -> str:
    """The web base of `source` for a GitHub API URL (GitHub Enterprise Server or ghe.com).

    `https://api.github.com` -> `https://github.com`; `https://ghe.example.com/api/v3/` ->
    `https://ghe.example.com`; `https://api.acme.ghe.com` -> `https://acme.ghe.com`.
    """
    parts = urlsplit(api_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute http(s) URL, got {api_url!r}")
    host = parts.netloc
    if host.startswith("api."):
        host = host[len("api.") :]
    return f"{parts.scheme}://{host}"


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    adapter: settings.AdapterSettings
    """The Knative receive-adapter contract (sink, namespace, overrides, metrics, probes...)."""
    secret_token: bytes = dataclasses.field(repr=False)
    """GITHUB_SECRET_TOKEN: the webhook secret, HMAC key of X-Hub-Signature-256. Required and
    non-empty: an adapter that cannot verify must not run. Never logged (repr=False)."""
    owner_and_repository: str
    """GITHUB_OWNER_REPO: `owner/repo` or `owner` (organization hook); names the `source`."""
    event_types: frozenset[str] = frozenset()
    """GITHUB_EVENT_TYPES, comma-separated `spec.eventTypes`; empty or `*` = every type (what
    upstream's adapter does: it relies on GitHub sending only the subscribed types)."""
    web_url: str = events.WEB_URL
    """Derived from GITHUB_API_URL (`spec.githubAPIURL`); github.com when unset, as upstream."""
    host: str = "0.0.0.0"
    """KEVENTS_RECEIVER_HOST: interface of the webhook port; all, so the Service reaches it."""
    port: int = 8080
    """PORT: the webhook port; 8080 is upstream's default. When it equals the probes port,
    /health and /readiness are served by the webhook server itself."""
    max_payload: int = 25 * MIB
    """GITHUB_MAX_PAYLOAD_BYTES: larger bodies get 413. GitHub caps payloads at 25 MB."""
    unverified_bytes: int = 64 * MIB
    """GITHUB_UNVERIFIED_BYTES: body bytes all requests together may hold before their
    signature is checked (reserved from Content-Length before reading); a request that does
    not fit is answered 503 + Retry-After without being read. Bounds what unauthenticated
    callers cost in memory; 64 MiB holds two 25 MB payloads or hundreds of ordinary ones, and
    with GITHUB_QUEUE_BYTES stays under the Deployment's 512Mi. At least the payload limit."""
    body_timeout: float = 10.0
    """GITHUB_BODY_TIMEOUT, seconds to receive a whole body; slower uploads get 408. GitHub
    gives up on a delivery after 10 s, so a slower upload is not GitHub's, and it holds a part
    of GITHUB_UNVERIFIED_BYTES meanwhile."""
    ack_timeout: float = 8.0
    """GITHUB_ACK_TIMEOUT, seconds a webhook waits for the sink before it is answered 202
    "queued". Below GitHub's 10 s delivery timeout, so GitHub sees our answer, not its own."""
    queue_size: int = 1000
    """GITHUB_QUEUE_SIZE: events waiting for the sink; beyond it, 503 + Retry-After."""
    queue_bytes: int = 128 * MIB
    """GITHUB_QUEUE_BYTES: payload bytes waiting for the sink; bounds memory like queue_size
    bounds count (five 25 MB payloads fit). 128 MiB, a quarter of the Deployment's 512Mi as
    for the dispatcher: with GITHUB_UNVERIFIED_BYTES, one payload being parsed and the idle
    process (~46 MiB), a slow sink under heavy legitimate traffic stays under the limit."""
    workers: int = 32
    """GITHUB_SEND_WORKERS: concurrent deliveries to the sink; keeps a keep-alive pool busy
    without flooding one sink."""
    dedupe_size: int = 10_000
    """GITHUB_DEDUPE_SIZE: delivery ids remembered for redelivery dedupe (about 1 MB)."""
    dedupe_ttl: float = 72 * 3600.0
    """GITHUB_DEDUPE_TTL, seconds; 72 h = how long GitHub offers a delivery for redelivery."""

    @property
    def source(self) -> str:
        return events.source_url(self.owner_and_repository, self.web_url)

    @property
    def probes_shared(self) -> bool:
        return self.adapter.probes_port == self.port

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        problems: list[str] = []
        adapter: settings.AdapterSettings | None = None
        try:
            adapter = settings.AdapterSettings.from_env(environ)
        except errors.ConfigError as exc:
            problems.extend(exc.problems)
        reader = settings.EnvReader(environ)
        secret = reader.string("GITHUB_SECRET_TOKEN", required=True)
        owner_repo = reader.string("GITHUB_OWNER_REPO", required=True).strip()
        if owner_repo and not _OWNER_REPO.fullmatch(owner_repo):
            reader.problem(
                "GITHUB_OWNER_REPO", f"must be 'owner/repo' or 'owner', got {owner_repo!r}"
            )
        event_types = reader.parsed("GITHUB_EVENT_TYPES", parse_event_types, frozenset[str]())
        base = reader.parsed("GITHUB_API_URL", web_url, events.WEB_URL)
        host = reader.string("KEVENTS_RECEIVER_HOST", "0.0.0.0")
        port = reader.integer("PORT", 8080, minimum=1, maximum=65535)
        max_payload = reader.integer(
            "GITHUB_MAX_PAYLOAD_BYTES", 25 * MIB, minimum=1024, maximum=1024 * MIB
        )
        unverified_bytes = reader.integer(
            "GITHUB_UNVERIFIED_BYTES", 64 * MIB, minimum=1024, maximum=64 * 1024 * MIB
        )
        if unverified_bytes < max_payload:
            reader.problem(
                "GITHUB_UNVERIFIED_BYTES",
                f"must be at least GITHUB_MAX_PAYLOAD_BYTES ({max_payload}), or a payload of "
                f"that size could never be received, got {unverified_bytes}",
            )
        body_timeout = reader.number("GITHUB_BODY_TIMEOUT", 10.0, minimum=0.1, maximum=600.0)
        ack_timeout = reader.number("GITHUB_ACK_TIMEOUT", 8.0, minimum=0.1, maximum=600.0)
        queue_size = reader.integer("GITHUB_QUEUE_SIZE", 1000, minimum=1, maximum=1_000_000)
        queue_bytes = reader.integer(
            "GITHUB_QUEUE_BYTES", 128 * MIB, minimum=MIB, maximum=64 * 1024 * MIB
        )
        workers = reader.integer("GITHUB_SEND_WORKERS", 32, minimum=1, maximum=1024)
        dedupe_size = reader.integer("GITHUB_DEDUPE_SIZE", 10_000, minimum=1, maximum=10**7)
        dedupe_ttl = reader.number(
            "GITHUB_DEDUPE_TTL", 72 * 3600.0, minimum=1.0, maximum=30 * 86400.0
        )
        problems.extend(reader.problems)
        if problems or adapter is None:
            raise errors.ConfigError(problems)
        return cls(
            adapter=adapter,
            secret_token=secret.encode("utf-8"),
            owner_and_repository=owner_repo,
            event_types=event_types,
            web_url=base,
            host=host,
            port=port,
            max_payload=max_payload,
            unverified_bytes=unverified_bytes,
            body_timeout=body_timeout,
            ack_timeout=ack_timeout,
            queue_size=queue_size,
            queue_bytes=queue_bytes,
            workers=workers,
            dedupe_size=dedupe_size,
            dedupe_ttl=dedupe_ttl,
        )
