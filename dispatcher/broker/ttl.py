"""The broker's hop limit: the `knativebrokerttl` extension (pure).

Knative (`pkg/broker/ttl.go`, ingress and filter handlers): the ingress gives an event
without the extension the maximum TTL (255 by default) and refuses one whose TTL is
exhausted (400); the filter sends a subscriber's reply back into the broker with the TTL
one lower, and drops a reply that would arrive with nothing left. A reply loop (a trigger
whose subscriber answers with an event it matches again) therefore stops after TTL hops.
"""

from __future__ import annotations

from kevents import cloudevent, rawevent

EXTENSION = "knativebrokerttl"
DEFAULT_MAX = 255

Event = cloudevent.CloudEvent | rawevent.RawEvent


class TTLError(ValueError):
    """The event's TTL is exhausted or not an integer: the ingress answers 400."""


def read(event: Event) -> int | None:
    """The event's TTL; None when it has none. Raises `TTLError` for a non-integer."""
    if isinstance(event, rawevent.RawEvent):
        value = event.extension(EXTENSION)
    else:
        value = event.get_attributes().get(EXTENSION)
    if value is None:
        return None
    if isinstance(value, bool):
        raise TTLError(f"{EXTENSION} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise TTLError(f"{EXTENSION} must be an integer, got {value!r}") from None


def admit(event: Event, maximum: int) -> tuple[Event, int]:
    """The event as the broker's channel gets it, and its TTL.

    Without a TTL it gets `maximum`; one above `maximum` is lowered to it (a producer cannot
    buy an endless loop); an exhausted one raises `TTLError`.
    """
    ttl = read(event)
    if ttl is not None and ttl <= 0:
        raise TTLError(f"{EXTENSION} is {ttl}: the event has been through too many hops")
    if ttl is not None and ttl <= maximum:
        return event, ttl
    return set_ttl(event, maximum), maximum


def set_ttl(event: Event, ttl: int) -> Event:
    if isinstance(event, rawevent.RawEvent):
        return event.with_extension(EXTENSION, ttl)
    return cloudevent.apply_overrides(event, {EXTENSION: ttl})


def for_reply(received: Event, reply: cloudevent.CloudEvent) -> cloudevent.CloudEvent | None:
    """The reply with the TTL one hop lower than the event it answers, or None when that
    leaves nothing: the reply is dropped (the loop ends here)."""
    try:
        ttl = read(received)
    except TTLError:
        ttl = None
    remaining = (ttl if ttl is not None else DEFAULT_MAX) - 1
    if remaining <= 0:
        return None
    return cloudevent.apply_overrides(reply, {EXTENSION: remaining})


def without(event: Event) -> Event:
    """The event as a Trigger's subscriber gets it: without the broker's internal TTL
    (Knative's filter removes it before delivery; replies get it back through `for_reply`)."""
    if isinstance(event, rawevent.RawEvent):
        return event.without_extension(EXTENSION)
    if EXTENSION not in event.get_attributes():
        return event
    return cloudevent.without(event, EXTENSION)
