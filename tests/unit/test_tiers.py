"""The per-tier clock names the tier of a test by its folder under tests/."""

from __future__ import annotations

import pytest

from tests import tiers


@pytest.mark.parametrize(
    ("nodeid", "tier"),
    [
        ("tests/unit/test_x.py::test_a", "unit"),
        ("tests/integration/test_x.py::test_a[case]", "integration"),
        ("tests/e2e/test_broker.py::test_a", "e2e"),
        ("tests/unit", "other"),
        ("tests/fixtures/test_x.py::test_a", "other"),
        ("test_x.py::test_a", "other"),
    ],
    ids=["unit", "integration", "e2e", "folder-only", "other-folder", "outside-tests"],
)
def test_tier_of(nodeid: str, tier: str) -> None:
    assert tiers.tier_of(nodeid) == tier
