"""The kevents exception tree.

Every error kevents raises on purpose is a `KeventsError`, so a deployable's `__main__` can
catch one type. Library errors (aiohttp, cloudevents, ssl, json) are wrapped with
`raise ... from` so the original traceback stays attached.

```
KeventsError
 ├── ConfigError                 bad environment / spec; carries every problem at once
 │    └── InvalidDurationError   an ISO-8601 duration that does not parse
 ├── InvalidEventError           an HTTP message that is not a valid CloudEvent (answer 400)
 ├── DeliveryError               a send that did not end in 2xx (carries the DeliveryResult)
 │    ├── RetryableDeliveryError     the last failure was retryable, attempts ran out
 │    └── TerminalDeliveryError      the sink refused it for good (e.g. 400, 403, 3xx)
 ├── SendQueueError
 │    ├── QueueFullError         try_put on a full SendQueue (caller should push back: 429/503)
 │    │    └── OverTargetError   events already wait longer than the lane's sojourn target (429)
 │    └── QueueClosedError       put after the queue started draining for shutdown
 └── KafkaError                  a Kafka operation failed (kevents.kafka); `reason` names the
      │                          kind for a condition, the message is the broker's
      ├── KafkaAuthenticationError   SASL/TLS credentials refused
      ├── KafkaUnreachableError      no broker answered (connection, DNS, timeout)
      └── KafkaTopicError            topic missing, not creatable, or not authorized
```

`Sender.send()` never raises for HTTP failures: it returns a `delivery.DeliveryResult`.
`DeliveryResult.raise_for_failure()` turns a failed result into a `DeliveryError` when a
caller prefers exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kevents import delivery


class KeventsError(Exception):
    """Base of every error kevents raises on purpose."""


class ConfigError(KeventsError):
    """Configuration is invalid. `problems` lists every problem, each naming its variable."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        count = len(self.problems)
        header = f"{count} configuration problem{'s' if count != 1 else ''}"
        super().__init__(header + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


class InvalidDurationError(ConfigError):
    """An ISO-8601 duration (e.g. `PT0.2S`) could not be parsed."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__([f"invalid ISO-8601 duration {text!r}: {reason}"])


class InvalidEventError(KeventsError):
    """An incoming HTTP message is not a valid CloudEvent; `reason` is safe to answer with 400."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class DeliveryError(KeventsError):
    """A delivery that did not end in a 2xx response."""

    def __init__(self, result: delivery.DeliveryResult, url: str) -> None:
        self.result = result
        self.url = url
        what = f"status {result.status}" if result.status is not None else result.error
        super().__init__(f"delivery to {url} failed after {result.attempts} attempt(s): {what}")


class RetryableDeliveryError(DeliveryError):
    """The last failure was retryable (5xx, 429, network error...) but attempts ran out."""


class TerminalDeliveryError(DeliveryError):
    """The sink refused the event for good (3xx or a 4xx other than 404/408/409/429)."""


class SendQueueError(KeventsError):
    """Base of SendQueue admission errors."""


class QueueFullError(SendQueueError):
    """The SendQueue is at capacity; the caller should push back (429/503) or wait."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        super().__init__(f"send queue is full ({maxsize} events waiting)")


class OverTargetError(QueueFullError):
    """Events already wait longer than the target sojourn time (`dispatcher.lane`): push back
    (429) before the count bound is reached."""

    def __init__(self, target: float) -> None:
        self.maxsize = 0
        self.target = target
        SendQueueError.__init__(
            self, f"events wait longer than the {target * 1000:g} ms target before delivery"
        )


class QueueClosedError(SendQueueError):
    """The SendQueue is draining for shutdown and accepts no new events."""

    def __init__(self) -> None:
        super().__init__("send queue is closed: shutting down")


class KafkaError(KeventsError):
    """A Kafka client operation failed. `reason` is a condition reason (CamelCase), `code` the
    client's error name (e.g. `SASL_AUTHENTICATION_FAILED`), the message the broker's words."""

    reason = "KafkaError"

    def __init__(self, message: str, *, code: str = "", retryable: bool = False) -> None:
        self.code = code
        self.retryable = retryable
        super().__init__(message)


class KafkaAuthenticationError(KafkaError):
    """The broker refused the SASL credentials or the TLS handshake."""

    reason = "AuthenticationFailed"


class KafkaUnreachableError(KafkaError):
    """No broker answered: refused connection, unknown host, timeout."""

    reason = "BrokerUnreachable"


class KafkaTopicError(KafkaError):
    """The topic is missing, cannot be created, or the principal is not authorized for it."""

    reason = "TopicNotReady"
