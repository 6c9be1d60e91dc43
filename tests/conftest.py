"""Shared test hygiene and fixtures for every tier.

- `no_leaked_tasks` (autouse): an async test that leaves tasks running fails.
- Cluster fixtures (real kube-apiserver from `hack/cluster`) live in `tests/cluster.py` and are
  registered here as a plugin so every tier can ask for them; the Kafka broker's fixtures
  (`kafka_broker`, `kafka_topic`, `kafka_console_consumer`) live in `tests/kafka.py`.
- `tests/tiers.py` prints the wall time of each tier at the end of the run.
- Hypothesis runs without its per-example deadline: a property test asserts behaviour, not
  speed, and the first example of a run (a parser built, modules imported) on a loaded
  2-core CI machine took 685 ms against the default 200 ms.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import hypothesis
import pytest

hypothesis.settings.register_profile("kevents", deadline=None)
hypothesis.settings.load_profile("kevents")

pytest_plugins = ["tests.cluster", "tests.kafka", "tests.tiers"]


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail the test when it leaves asyncio tasks behind (a leaked task is a leaked worker)."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    # Give cancelled tasks one loop iteration to finish their cleanup.
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    if leaked:
        for task in leaked:
            task.cancel()
        await asyncio.gather(*leaked, return_exceptions=True)
        pytest.fail(f"test leaked {len(leaked)} asyncio task(s): {leaked!r}")
