"""The Kafka ingress's admission on a virtual clock: refuse new events only while the oldest
waits beyond the target and acknowledgements are not coming fast."""

from __future__ import annotations

from dispatcher.kafkasink.ingress import Admission


def test_nothing_waiting_or_young_enough_is_admitted() -> None:
    one = Admission(target=1.0)
    assert not one.over_target(100.0)  # nothing in flight
    one.started(100.0)
    assert not one.over_target(101.0)  # the oldest waited exactly the target


def test_a_stalled_kafka_refuses_once_the_oldest_waits_beyond_the_target() -> None:
    one = Admission(target=1.0)
    one.started(100.0)
    one.started(100.5)
    assert one.over_target(101.01)  # no acknowledgement at all yet


def test_one_stuck_event_while_acknowledgements_flow_refuses_nothing() -> None:
    one = Admission(target=1.0)
    stuck = one.started(100.0)
    for at in (100.2, 100.9, 101.6):  # others acknowledged within 10 ms each
        one.finished(one.started(at), at + 0.01)
    assert not one.over_target(101.7)
    assert not one.over_target(102.6)  # the last acknowledgement 0.99 s ago
    assert one.over_target(102.7)  # none for longer than the target: Kafka stalled
    one.finished(stuck, 102.8)
    assert not one.over_target(102.8)  # nothing waits any more


def test_slow_acknowledgements_refuse_though_they_keep_coming() -> None:
    one = Admission(target=1.0)
    first = one.started(100.0)
    one.started(100.1)
    one.finished(first, 101.5)  # acknowledged, but after 1.5 s
    assert one.over_target(101.6)  # the oldest (100.1) waits 1.5 s, acks are slow


def test_target_zero_never_refuses() -> None:
    one = Admission(target=0.0)
    one.started(0.0)
    assert not one.over_target(3600.0)
