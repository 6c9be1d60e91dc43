"""Shared test hygiene and fixtures for every tier.

- `no_leaked_tasks` (autouse): an async test that leaves tasks running fails; TLS
  connections its code closed are let finish their goodbye before the loop ends.
- `kube_clients_closed` (autouse): the `kevents.kubeapi.KubeApi`s a test built (from the
  `api_client` fixture, most of them) are closed at its end, as the fixture closes the
  kubernetes-asyncio client they were built from.
- After each integration test, a garbage collection: a socket or transport the test left
  open is reported (ResourceWarning, an error) against that test, not against whichever later
  test the collector happens to run in.
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
import gc
from asyncio import sslproto
from collections.abc import AsyncIterator
from typing import Any

import hypothesis
import pytest

from kevents import kubeapi

hypothesis.settings.register_profile("kevents", deadline=None)
hypothesis.settings.load_profile("kevents")

pytest_plugins = ["tests.cluster", "tests.kafka", "tests.tiers"]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Runs after the test's fixtures (its event loop included) are finalized, inside
    pytest's unraisable-exception check of the teardown phase."""
    if "integration" in item.path.parts:
        gc.collect()


@pytest.fixture(autouse=True)
async def kube_clients_closed(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    made: list[kubeapi.KubeApi] = []
    init = kubeapi.KubeApi.__init__

    def recording(self: kubeapi.KubeApi, config: Any) -> None:
        init(self, config)
        made.append(self)

    monkeypatch.setattr(kubeapi.KubeApi, "__init__", recording)
    yield
    for api in made:
        await api.close()


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
    await _tls_goodbyes_finished()


def _saying_goodbye(transport: Any) -> bool:
    protocol = transport.get_protocol()
    # the protocol's state is not in typeshed's stub (nor public): read it as Any
    state: Any = getattr(protocol, "_state", None)
    return isinstance(protocol, sslproto.SSLProtocol) and state in (
        sslproto.SSLProtocolState.FLUSHING,
        sslproto.SSLProtocolState.SHUTDOWN,
    )


async def _tls_goodbyes_finished(within: float = 10.0) -> None:
    """Wait until the TLS connections closed during the test have finished closing.

    A request cancelled mid-flight (a controller stopped at a test's end) has its connection
    closed by aiohttp with a TLS goodbye: close_notify sent, the socket closed when the
    API server answers. Under load that answer can come after the test's event loop is
    closed; the socket then stays open until garbage collection warns about it in whichever
    later test is running (CI flakes: "unclosed <socket ... raddr=(apiserver)>" in
    test_controller_flows and test_controller_eventing). So the loop waits for those
    goodbyes (each one is already closed by its owner: this is not a leak being hidden) and
    aborts what is still waiting after `within` seconds (asyncio's own bound is 30 s).
    Open connections that nobody closed are left alone, for their warnings to name them.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        # the selector loop's own registry of its socket transports (no public accessor)
        transports = list(getattr(loop, "_transports", {}).values())
        closing = [t for t in transports if _saying_goodbye(t)]
        if not closing:
            return
        if loop.time() >= deadline:
            for transport in closing:
                transport.abort()
            await asyncio.sleep(0)  # the aborted sockets close on the next iteration
            return
        await asyncio.sleep(0.01)
