"""The Channelable duck's shared status pieces (InMemoryChannel, Channel).

Condition types both kinds use, Knative's reasons for the dead letter sink, and
EventPoliciesReady: True with reason `OIDCDisabled` because authentication-oidc is off
(no EventPolicy can apply).
"""

from __future__ import annotations

from controller.framework import conditions
from kevents import kubeapi

ADDRESSABLE = "Addressable"
DEAD_LETTER_SINK_RESOLVED = "DeadLetterSinkResolved"
EVENT_POLICIES_READY = "EventPoliciesReady"
DLS_FAILED = "Unable to get the DeadLetterSink's URI"
"""Knative's reason, spaces included."""


def mark_dead_letter_sink(
    conds: conditions.Conditions, status: kubeapi.Json, resolved: kubeapi.Json | None
) -> conditions.Conditions:
    """DeadLetterSinkResolved and the DeliveryStatus fields (`resolved`; None: no DLS)."""
    if resolved is None:
        return conds.mark_true(
            DEAD_LETTER_SINK_RESOLVED,
            "DeadLetterSinkNotConfigured",
            "No dead letter sink is configured.",
        )
    status.update(resolved)
    return conds.mark_true(DEAD_LETTER_SINK_RESOLVED)


def mark_event_policies(conds: conditions.Conditions) -> conditions.Conditions:
    return conds.mark_true(
        EVENT_POLICIES_READY,
        "OIDCDisabled",
        'Feature "authentication-oidc" must be enabled to support Authorization',
    )
