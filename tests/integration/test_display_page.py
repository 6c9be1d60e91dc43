"""event-display's live page in headless Chromium: the events-per-second chart by type, the
counts per source, the type/source filters and the pause button (issue 25).

event-display runs in-process on loopback; the page is Debian's Chromium driven over CDP
(tests/e2e/browser.py). The chart's data is read from `window.keventsChart`, which the page
fills with what it draws.
"""

from __future__ import annotations

import asyncio
import io
import pathlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from display import server
from kevents import cloudevent
from tests import waiting
from tests.e2e import browser

ORDERS, PAYMENTS = "com.example.order.created", "com.example.payment.settled"


@pytest.fixture
async def display_url() -> AsyncIterator[str]:
    app = server.Display(registry=CollectorRegistry(), out=io.StringIO()).app()
    app_runner = web.AppRunner(app)
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{app_runner.addresses[0][1]}/"
    finally:
        await app_runner.cleanup()


async def _post(http: aiohttp.ClientSession, url: str, type_: str, source: str, n: int) -> None:
    for i in range(n):
        event = cloudevent.build(type_, source, {"n": i}, datacontenttype="application/json")
        message = cloudevent.encode(event)
        async with http.post(url, data=message.body, headers=dict(message.headers)) as resp:
            assert resp.status == 202


async def _chart(page: browser.Page) -> dict[str, Any]:
    data = await page.evaluate("window.keventsChart")
    assert isinstance(data, dict), "the page exposes no window.keventsChart"
    return data


def _totals(chart: dict[str, Any]) -> dict[str, int]:
    return {s["type"]: s["total"] for s in chart["series"]}


async def _until(
    page: browser.Page, ok: Callable[[dict[str, Any]], bool], within: float, what: str
) -> dict[str, Any]:
    return await waiting.fetched(lambda: _chart(page), ok, within, what, step=0.2)


async def _connected(page: browser.Page) -> None:
    await waiting.fetched(
        page.text, lambda text: "live:" in text, 30, "the page's event stream connected", step=0.2
    )


async def test_chart_shows_rate_by_type_and_counts_by_source(
    display_url: str, tmp_path: pathlib.Path
) -> None:
    async with (
        browser.open_page(display_url, tmp_path / "profile") as page,
        aiohttp.ClientSession() as http,
    ):
        await _connected(page)
        await _post(http, display_url, ORDERS, "/shop/orders", 12)
        await _post(http, display_url, PAYMENTS, "/shop/payments", 8)
        sent = time.monotonic()
        # the bound: the chart shows new events within 5 s
        chart = await _until(
            page, lambda c: _totals(c) == {ORDERS: 12, PAYMENTS: 8}, 5, "both series"
        )
        assert time.monotonic() - sent < 5
        assert chart["windowSeconds"] == 300 and chart["bucketSeconds"] == 5
        assert chart["sources"] == [
            {"source": "/shop/orders", "count": 12},
            {"source": "/shop/payments", "count": 8},
        ]
        for series in chart["series"]:
            # events/s over 5 s buckets: the 20 events arrived within the last few buckets
            assert sum(p["rate"] for p in series["points"]) * 5 == pytest.approx(series["total"])
            assert len(series["points"]) == 61
        # the SVG draws one line per type, and the legend names them with their totals
        lines = await page.evaluate(
            "[...document.querySelectorAll('#rate-svg polyline')].map(l => l.dataset.type)"
        )
        assert sorted(lines) == [ORDERS, PAYMENTS]
        text = await page.text()
        assert f"{ORDERS} (12)" in text and f"{PAYMENTS} (8)" in text

        # a third type arriving later shows up within 5 s too
        await _post(http, display_url, "com.example.refund", "/shop/payments", 1)
        sent = time.monotonic()
        await _until(page, lambda c: len(c["series"]) == 3, 5, "the third type")
        assert time.monotonic() - sent < 5


async def test_filters_and_pause(display_url: str, tmp_path: pathlib.Path) -> None:
    async with (
        browser.open_page(display_url, tmp_path / "profile") as page,
        aiohttp.ClientSession() as http,
    ):
        await _connected(page)
        await _post(http, display_url, ORDERS, "/shop/orders", 3)
        await _post(http, display_url, PAYMENTS, "/shop/payments", 2)
        await _until(page, lambda c: sum(_totals(c).values()) == 5, 30, "five events")

        # filter by type: the chart, the counts and the list keep only that type
        await page.evaluate(
            "(() => { const s = document.getElementById('type-filter');"
            f" s.value = {PAYMENTS!r}; s.dispatchEvent(new Event('change')); }})()"
        )
        chart = await _until(page, lambda c: c["filter"]["type"] == PAYMENTS, 30, "the filter")
        assert _totals(chart) == {PAYMENTS: 2}
        assert chart["sources"] == [{"source": "/shop/payments", "count": 2}]
        shown = await page.evaluate(
            "[...document.querySelectorAll('#events .event .type')].map(e => e.textContent)"
        )
        assert shown == [PAYMENTS, PAYMENTS]
        # then by source (type back to all)
        await page.evaluate(
            "(() => { const t = document.getElementById('type-filter'); t.value = '';"
            " const s = document.getElementById('source-filter'); s.value = '/shop/orders';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        chart = await _until(
            page, lambda c: c["filter"]["source"] == "/shop/orders", 30, "the source filter"
        )
        assert _totals(chart) == {ORDERS: 3}
        await page.evaluate(
            "(() => { const s = document.getElementById('source-filter'); s.value = '';"
            " s.dispatchEvent(new Event('change')); })()"
        )

        # pause: events are held (the status line counts them) and the chart stands still
        await page.evaluate("document.getElementById('pause').click()")
        await _post(http, display_url, ORDERS, "/shop/orders", 4)
        for _ in range(150):
            if "4 new event(s) held" in await page.text():
                break
            await asyncio.sleep(0.2)
        assert "paused, 4 new event(s) held" in await page.text()
        chart = await _chart(page)
        assert chart["paused"] is True
        assert _totals(chart) == {ORDERS: 3, PAYMENTS: 2}
        # resume: the held events join the chart
        await page.evaluate("document.getElementById('pause').click()")
        chart = await _until(
            page, lambda c: _totals(c) == {ORDERS: 7, PAYMENTS: 2}, 30, "the held events"
        )
        assert chart["paused"] is False
