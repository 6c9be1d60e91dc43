"""The outcome of one delivery (all attempts of one event to one URL).

Metrics, spans, dead-letter routing and replies are all derived from a `DeliveryResult`.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from kevents import errors, retries

ERROR_DATA_MAX_CHARS = 1024
"""Knative truncates the base64 `knativeerrordata` extension to 1024 characters."""

_EMPTY_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryResult:
    status: int | None
    """HTTP status of the last attempt; None when no response arrived (network error, timeout)."""
    duration: float
    """Seconds from the first attempt to the end of the last one, waits included."""
    attempts: int
    """Attempts made (1 = no retry)."""
    error: str | None = None
    """Why the last attempt failed, in words (never contains a secret); None on success."""
    body: bytes = b""
    """Response body of the last attempt, truncated to the sender's body limit."""
    body_truncated: bool = False
    headers: Mapping[str, str] = dataclasses.field(default_factory=lambda: _EMPTY_HEADERS)
    """Response headers of the last attempt (case-insensitive mapping when from aiohttp)."""

    @property
    def ok(self) -> bool:
        """True when the last attempt got a 2xx."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def status_class(self) -> str:
        """`2xx`..`5xx`, or `none` without a response: a bounded metric label."""
        if self.status is None:
            return "none"
        return f"{self.status // 100}xx"

    @property
    def retryable(self) -> bool:
        """Whether the last failure was of a kind worth retrying later (e.g. from a DLQ)."""
        return not self.ok and retries.should_retry(self.status)

    def raise_for_failure(self, url: str) -> None:
        """Raise a `DeliveryError` subtype unless the delivery succeeded."""
        if self.ok:
            return
        if self.retryable:
            raise errors.RetryableDeliveryError(self, url)
        raise errors.TerminalDeliveryError(self, url)


def dead_letter_extensions(result: DeliveryResult, destination: str) -> dict[str, str]:
    """CloudEvent extensions Knative adds to an event routed to a dead-letter sink.

    As Knative's dispatcher (`pkg/kncloudevents/event_dispatcher.go`) records them: when no
    response arrived, `knativeerrorcode` is 500 and the body is `dispatch error: <why>`;
    `knativeerrordata` is the standard base64 of the body cut to 1024 characters. Knative
    sends it empty for an empty body; kevents leaves it out then.
    """
    body = result.body if result.status is not None else f"dispatch error: {result.error}".encode()
    extensions = {
        "knativeerrordest": destination,
        "knativeerrorcode": str(result.status if result.status is not None else 500),
    }
    if body:
        # Encode only what fits: 3 bytes give 4 characters, so 768 bytes fill 1024.
        kept = body[: ERROR_DATA_MAX_CHARS // 4 * 3]
        extensions["knativeerrordata"] = base64.standard_b64encode(kept).decode("ascii")
    return extensions
