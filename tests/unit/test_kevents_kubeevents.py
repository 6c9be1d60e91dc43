"""The event recorder's correlation (`kevents.kubeevents.Correlator`), on clock values passed
in: which Event a repeat adds to, when similar messages are combined, what the spam filter
drops and when it lets one through again (client-go's EventCorrelator numbers)."""

from __future__ import annotations

import pytest

from kevents import kubeevents

KUBELET = kubeevents.Source("kubelet", "node-0")
POD = kubeevents.ObjectReference(
    apiVersion="v1", kind="Pod", namespace="ns", name="crasher", uid="u1",
    fieldPath="spec.containers{app}",
)  # fmt: skip
OTHER_POD = kubeevents.ObjectReference(apiVersion="v1", kind="Pod", namespace="ns", name="b")


def correlate(
    c: kubeevents.Correlator, message: str, now: float, ref: kubeevents.ObjectReference = POD,
    reason: str = "BackOff",
) -> kubeevents.Decision | None:  # fmt: skip
    return c.correlate(KUBELET, ref, "Warning", reason, message, now)


def test_a_repeat_adds_to_the_same_event_and_another_object_has_its_own() -> None:
    c = kubeevents.Correlator()
    first = correlate(c, "Back-off restarting", 0.0)
    again = correlate(c, "Back-off restarting", 10.0)
    other = correlate(c, "Back-off restarting", 10.0, ref=OTHER_POD)
    assert first is not None and again is not None and other is not None
    assert first == again
    assert other.key != first.key
    assert first.message == "Back-off restarting"


@pytest.mark.parametrize(
    ("count", "combined"),
    [(9, False), (10, True), (12, True)],
    ids=["nine-messages-apart", "the-tenth-is-combined", "later-ones-too"],
)
def test_the_tenth_different_message_within_ten_minutes_is_combined(
    count: int, combined: bool
) -> None:
    c = kubeevents.Correlator()
    decisions = [
        correlate(c, f"Liveness probe failed: {i}", float(i), reason="Unhealthy")
        for i in range(count)
    ]
    last = decisions[-1]
    assert last is not None
    expected = f"Liveness probe failed: {count - 1}"
    if combined:
        assert last.message == "(combined from similar events): " + expected
        tenth = decisions[9]
        assert tenth is not None and tenth.key == last.key  # one Event for all of them
    else:
        assert last.message == expected
        assert len({d.key for d in decisions if d is not None}) == count


def test_similar_messages_count_again_after_ten_quiet_minutes() -> None:
    c = kubeevents.Correlator()
    for i in range(9):
        correlate(c, f"failed: {i}", float(i), reason="Unhealthy")
    after = correlate(c, "failed: 9", 8.0 + 600.0 + 1.0, reason="Unhealthy")
    assert after is not None and after.message == "failed: 9"


def test_the_spam_filter_lets_25_through_then_one_per_five_minutes() -> None:
    c = kubeevents.Correlator()
    passed = [correlate(c, "Back-off", 0.0) is not None for _ in range(30)]
    assert passed == [True] * 25 + [False] * 5
    assert correlate(c, "Back-off", 299.0) is None
    assert correlate(c, "Back-off", 300.0) is not None
    assert correlate(c, "Back-off", 301.0) is None
    # Each message has its own bucket: another message of the same object still passes.
    assert correlate(c, "Back-off, other", 301.0) is not None


def test_the_caches_are_bounded() -> None:
    c = kubeevents.Correlator(size=2)
    refs = [kubeevents.ObjectReference(kind="Pod", namespace="ns", name=f"p{i}") for i in range(3)]
    for ref in refs:
        for _ in range(25):
            correlate(c, "Back-off", 0.0, ref=ref)
    # p0's exhausted bucket was evicted (least recently used): it starts a fresh burst.
    assert correlate(c, "Back-off", 0.0, ref=refs[0]) is not None
    assert correlate(c, "Back-off", 0.0, ref=refs[2]) is None
