"""DeliveryCache: bounded LRU + TTL memory of delivered X-GitHub-Delivery ids."""

from __future__ import annotations

import pytest

from sources.github import deliveries


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_remembers_what_was_added() -> None:
    cache = deliveries.DeliveryCache(clock=FakeClock())
    assert "a" not in cache
    cache.add("a")
    assert "a" in cache
    assert "b" not in cache
    assert 7 not in cache


def test_entries_expire_after_ttl() -> None:
    clock = FakeClock()
    cache = deliveries.DeliveryCache(ttl=10.0, clock=clock)
    cache.add("a")
    clock.now += 9.999
    assert "a" in cache
    clock.now += 0.001
    assert "a" not in cache
    assert len(cache) == 0


def test_adding_evicts_expired_entries() -> None:
    clock = FakeClock()
    cache = deliveries.DeliveryCache(ttl=10.0, clock=clock)
    cache.add("old")
    clock.now += 11
    cache.add("new")
    assert len(cache) == 1


def test_size_bound_evicts_least_recently_seen() -> None:
    cache = deliveries.DeliveryCache(maxsize=3, clock=FakeClock())
    for delivery_id in ("a", "b", "c"):
        cache.add(delivery_id)
    assert "a" in cache  # touching "a" makes "b" the least recent
    cache.add("d")
    assert len(cache) == 3
    assert "b" not in cache
    assert {"a", "c", "d"} == {i for i in "abcd" if i in cache}


def test_readding_refreshes_ttl() -> None:
    clock = FakeClock()
    cache = deliveries.DeliveryCache(ttl=10.0, clock=clock)
    cache.add("a")
    clock.now += 8
    cache.add("a")
    clock.now += 8
    assert "a" in cache


@pytest.mark.parametrize(
    ("maxsize", "ttl"), [(0, 1.0), (1, 0.0), (1, -1.0)], ids=["no-room", "zero-ttl", "neg-ttl"]
)
def test_rejects_useless_bounds(maxsize: int, ttl: float) -> None:
    with pytest.raises(ValueError, match="maxsize"):
        deliveries.DeliveryCache(maxsize=maxsize, ttl=ttl)
