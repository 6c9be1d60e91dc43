"""One rule set: what the PingSource reconciler marks Ready is exactly what the adapter fires.

Each spec goes through the controller's entry point (`reconciler.invalid`, whose verdict
becomes the Ready condition) and the adapter's (`Adapter.handle` of the same object with a
resolved sink), and both must give the expected verdict.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from controller.pingsource import reconciler
from kevents import delivery, informer
from sources.ping import adapter, metrics
from tests import manualclock

NOW = datetime.datetime.now(datetime.UTC)


class NoSender:
    async def send(self, *args: Any, **kwargs: Any) -> delivery.DeliveryResult:
        raise AssertionError("nothing fires in this test")


async def adapter_schedules(spec: dict[str, Any]) -> bool:
    ping = adapter.Adapter(
        event_sender=NoSender(),
        ping_clock=manualclock.ManualClock(NOW),
        metrics=metrics.PingMetrics(CollectorRegistry()),
    )
    source = {
        "metadata": {"namespace": "ns", "name": "p", "uid": "u"},
        "spec": {"sink": {"uri": "http://sink.ns/"}, **spec},
        "status": {"sinkUri": "http://sink.ns/"},
    }
    await ping.handle(informer.Change.ADD, source)
    return "ns/p" in ping.jobs


CASES = {
    "defaults": ({}, None),
    "every-minute-in-madrid": ({"schedule": "*/1 * * * *", "timezone": "Europe/Madrid"}, None),
    "seconds-at-the-floor": ({"schedule": "*/10 * * * * *"}, None),
    "leap-day": ({"schedule": "0 0 29 2 *"}, None),
    "feb-31-or-monday": ({"schedule": "0 0 31 2 1"}, None),
    "descriptor-with-prefix": ({"schedule": "CRON_TZ=Asia/Tokyo @daily"}, None),
    "json-with-charset": ({"contentType": "application/json; charset=utf-8",
                           "data": '{"a": 1}'}, None),
    "feb-31": ({"schedule": "0 0 31 2 *"}, "InvalidSchedule"),
    "feb-30": ({"schedule": "0 0 30 2 *"}, "InvalidSchedule"),
    "below-the-floor": ({"schedule": "*/5 * * * * *"}, "InvalidSchedule"),
    "every-second": ({"schedule": "* * * * * *"}, "InvalidSchedule"),
    "every": ({"schedule": "@every 1m"}, "InvalidSchedule"),
    "dow-7": ({"schedule": "0 0 * * 7"}, "InvalidSchedule"),
    "quartz-L": ({"schedule": "0 0 L * *"}, "InvalidSchedule"),
    "fixed-offset-zone": ({"timezone": "UTC+8"}, "InvalidTimezone"),
    "zone-twice": ({"schedule": "TZ=UTC * * * * *", "timezone": "UTC"}, "InvalidTimezone"),
    "both-data": ({"data": "x", "dataBase64": "eA=="}, "InvalidData"),
    "json-array": ({"contentType": "application/json", "data": "[1]"}, "InvalidData"),
    "bad-media-type": ({"contentType": "json", "data": "{}"}, "InvalidData"),
    "unpadded-base64": ({"dataBase64": "eA"}, "InvalidData"),
}  # fmt: skip


@pytest.mark.parametrize(("spec", "reason"), CASES.values(), ids=CASES.keys())
async def test_controller_and_adapter_agree(spec: dict[str, Any], reason: str | None) -> None:
    verdict = reconciler.invalid(spec)
    assert (verdict[0] if verdict else None) == reason
    assert await adapter_schedules(spec) is (reason is None)


def test_the_message_lists_every_problem_with_its_field() -> None:
    assert reconciler.invalid({"schedule": "0 0 31 2 *", "data": "x", "dataBase64": "eA=="}) == (
        "InvalidSchedule",
        "spec.schedule: '0 0 31 2 *' never fires: no date matches it within 5 years; "
        "spec.data, spec.dataBase64: expected exactly one, got both",
    )


def test_ce_attributes_name_the_source() -> None:
    assert reconciler.ce_attributes("ns", "p") == [
        {"type": "dev.knative.sources.ping", "source": "/apis/v1/namespaces/ns/pingsources/p"}
    ]
