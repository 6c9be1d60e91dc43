"""What the ingress knows of one KafkaSink, read from the object the informer hands it (pure).

The ingress serves every KafkaSink it sees, as soon as it sees it: it does not wait for
the controller's Ready (the topic may be created by Kafka itself, or exist already), and a
sink whose credentials are wrong answers 503 naming Kafka's refusal, which the KafkaSink's
own conditions explain (TopicReady/ConfigParsed False with the broker's error).
"""

from __future__ import annotations

import dataclasses
from typing import Any

Key = tuple[str, str]
"""(namespace, name)."""

BINARY = "binary"
STRUCTURED = "structured"
CONTENT_MODES = (BINARY, STRUCTURED)


@dataclasses.dataclass(frozen=True, slots=True)
class Sink:
    namespace: str
    name: str
    topic: str
    bootstrap_servers: tuple[str, ...]
    content_mode: str
    secret: str | None
    """Name of the auth Secret in the sink's namespace (`spec.auth.secret.ref.name`)."""
    generation: int = 0
    secret_namespace: str | None = None
    """Where the Secret is when not in the sink's namespace (a Kafka Broker's config)."""

    @property
    def secret_key(self) -> Key | None:
        """(namespace, name) of the auth Secret."""
        if self.secret is None:
            return None
        return (self.secret_namespace or self.namespace, self.secret)

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)


class SinkError(Exception):
    """The object cannot be served (a spec the CRD schema should have refused)."""


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def parse(obj: dict[str, Any]) -> Sink:
    """The sink of a KafkaSink object; raises `SinkError` naming the bad field."""
    namespace, name = key_of(obj)
    spec = obj.get("spec") or {}
    topic = spec.get("topic")
    if not isinstance(topic, str) or not topic:
        raise SinkError("spec.topic: missing")
    servers = spec.get("bootstrapServers")
    if isinstance(servers, str):  # Knative's first v1alpha1 had one comma-separated string
        servers = [s for s in servers.split(",") if s.strip()]
    if not isinstance(servers, list) or not servers:
        raise SinkError("spec.bootstrapServers: missing")
    mode = spec.get("contentMode") or BINARY
    if mode not in CONTENT_MODES:
        raise SinkError(f"spec.contentMode: {mode!r} is not binary or structured")
    ref = ((spec.get("auth") or {}).get("secret") or {}).get("ref") or {}
    secret = ref.get("name") or None
    return Sink(
        namespace=namespace,
        name=name,
        topic=topic,
        bootstrap_servers=tuple(str(s).strip() for s in servers),
        content_mode=mode,
        secret=str(secret) if secret else None,
        generation=int((obj.get("metadata") or {}).get("generation") or 0),
    )
