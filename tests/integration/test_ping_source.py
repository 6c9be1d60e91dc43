"""The PingSource adapter against the real API server, on a manual clock, to loopback sinks."""

from __future__ import annotations

import base64
import datetime

import pytest
from kubernetes_asyncio import client

from tests import cluster, manualclock, waiting
from tests.integration import pingsupport

pytestmark = pytest.mark.cluster

# 11:59:58 in Madrid (CEST): the next */1 tick is 12:00:00 local = 10:00:00 UTC.
BEFORE = datetime.datetime(2025, 6, 1, 9, 59, 58, tzinfo=datetime.UTC)


async def test_madrid_json_source_delivers_at_the_minute_boundary(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    pingsupport.install_crd(kube)
    clock = manualclock.ManualClock(BEFORE)
    async with pingsupport.serve_sink() as sink:
        async with pingsupport.replica(api_client, clock, namespace) as running:
            await pingsupport.create(
                api_client, namespace, "madrid", sink.url,
                schedule="*/1 * * * *", timezone="Europe/Madrid",
                contentType="application/json", data='{"message": "Hola"}',
                ceOverrides={"extensions": {"team": "ping"}},
            )  # fmt: skip
            await waiting.until(lambda: f"{namespace}/madrid" in running.adapter.timetable)
            await clock.advance(1.999)
            assert sink.events == []
            await clock.advance(0.001)
            await sink.wait_for(1)
    _, event, headers = sink.events[0]
    assert event.get_type() == "dev.knative.sources.ping"
    assert event.get_source() == f"/apis/v1/namespaces/{namespace}/pingsources/madrid"
    assert event.get_time() == datetime.datetime(2025, 6, 1, 10, 0, tzinfo=datetime.UTC)
    assert event.get_extension("team") == "ping"
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == {"message": "Hola"}
    assert headers["Kn-Namespace"] == namespace
    assert running.registry.get_sample_value("kevents_ping_ticks_fired_total") == 1
    assert running.registry.get_sample_value(
        "kevents_ping_tick_lateness_seconds_bucket", {"le": "0.001"}
    ) == 1  # fmt: skip


async def test_base64_data_is_decoded_and_sent_with_its_content_type(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    pingsupport.install_crd(kube)
    clock = manualclock.ManualClock(BEFORE)
    payload = bytes(range(256))
    async with pingsupport.serve_sink() as sink:
        async with pingsupport.replica(api_client, clock, namespace) as running:
            await pingsupport.create(
                api_client, namespace, "binary", sink.url,
                contentType="application/octet-stream",
                dataBase64=base64.b64encode(payload).decode(),
            )  # fmt: skip
            await waiting.until(lambda: f"{namespace}/binary" in running.adapter.timetable)
            await clock.advance(2)
            await sink.wait_for(1)
    _, event, headers = sink.events[0]
    assert headers["Content-Type"] == "application/octet-stream"
    assert event.get_data() == payload


async def test_changes_and_deletes_take_effect_without_restart(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    pingsupport.install_crd(kube)
    clock = manualclock.ManualClock(BEFORE)
    objects = client.CustomObjectsApi(api_client)
    async with pingsupport.serve_sink() as sink:
        async with pingsupport.replica(api_client, clock, namespace) as running:
            await pingsupport.create(api_client, namespace, "live", sink.url,
                                     data="one", contentType="text/plain")  # fmt: skip
            key = f"{namespace}/live"
            await waiting.until(lambda: key in running.adapter.timetable)
            await clock.advance(2)  # 10:00:00
            await sink.wait_for(1)
            await objects.patch_namespaced_custom_object(  # type: ignore[call-arg]
                "sources.knative.dev", "v1", namespace, "pingsources", "live",
                {"spec": {"schedule": "*/10 * * * * *", "data": "two"}},
                _content_type="application/merge-patch+json",
            )  # fmt: skip
            await waiting.until(lambda: running.adapter.jobs[key].payload.data == b"two")
            await clock.advance(10)  # 10:00:10
            await sink.wait_for(2)
            await objects.delete_namespaced_custom_object(
                "sources.knative.dev", "v1", namespace, "pingsources", "live"
            )
            await waiting.until(lambda: key not in running.adapter.jobs)
            await clock.advance(60)
    bodies = [(str(e.get_time())[11:19], e.get_data()) for _, e, _ in sink.events]
    assert bodies == [("10:00:00", "one"), ("10:00:10", "two")]
