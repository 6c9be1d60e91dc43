"""REAL TIME (up to ~70 s of wall time): one tick at the next wall-clock minute, no fake clock.

The other PingSource tests run on a manual clock; this one proves the system clock, the
timers and the send path line up with the real minute boundary.
"""

from __future__ import annotations

import datetime

import pytest
from kubernetes_asyncio import client

from sources.ping import clock
from tests import cluster
from tests.integration import pingsupport

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.mark.timeout(100)
async def test_real_minute_tick_in_madrid(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    pingsupport.install_crd(kube)
    async with pingsupport.serve_sink() as sink:
        async with pingsupport.replica(api_client, clock.SystemClock(), namespace):
            await pingsupport.create(
                api_client, namespace, "realtime", sink.url, schedule="*/1 * * * *",
                timezone="Europe/Madrid", contentType="application/json", data='{"n": 1}',
            )  # fmt: skip
            await sink.wait_for(1, within=70)
            arrived = datetime.datetime.now(datetime.UTC)
    event = sink.events[0][1]
    tick = event.get_time()
    assert tick is not None
    assert tick.second == 0 and tick.microsecond == 0
    assert datetime.timedelta(0) <= arrived - tick < datetime.timedelta(seconds=1)
    assert event.get_data() == {"n": 1}
