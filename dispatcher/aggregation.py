"""One metrics endpoint for all worker processes of a dispatcher pod.

Each worker process (`dispatcher.workers`) keeps its own registry; workers 1..N-1 serve it on
loopback only (`METRICS_PROMETHEUS_PORT + i`), and worker 0's `/metrics` on the pod's metrics
port answers for the pod: its own samples plus every other worker's, fetched at scrape time
and summed per series (same name and labels), as prometheus-client's multiprocess mode would
(`livesum` for gauges) without its files and without giving up custom collectors. Counters
and histograms add up exactly; gauges add up too (queue depth and bytes of the pod; "channels
served" is then per worker process times the workers). `_created` samples are dropped: a sum
of creation times means nothing. A worker that does not answer within `timeout` (restarting)
is left out of that scrape and counted in `kevents_metrics_workers_missing_total`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Sequence

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, exposition, parser
from prometheus_client.metrics_core import Metric

logger = logging.getLogger(__name__)

_REGISTRY = web.AppKey("registry", CollectorRegistry)
_PEERS: web.AppKey[tuple[str, ...]] = web.AppKey("peers")
_MISSING = web.AppKey("missing", Counter)


def merge(texts: Iterable[str]) -> list[Metric]:
    """Families of every text, samples with the same name and labels summed."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in parser.text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
                values[family.name] = {}
            series = values[family.name]
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                key = (sample.name, tuple(sorted(sample.labels.items())))
                series[key] = series.get(key, 0.0) + sample.value
    for name, merged in families.items():
        for (sample_name, labels), value in values[name].items():
            merged.add_sample(sample_name, dict(labels), value)
    return [merged for merged in families.values() if merged.samples]


class _Merged:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def render(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(families))
    return exposition.generate_latest(registry)


async def _fetch(session: aiohttp.ClientSession, url: str) -> str | None:
    try:
        async with session.get(url) as response:
            if response.status == 200:
                return await response.text()
    except (aiohttp.ClientError, TimeoutError):
        pass
    return None


async def _serve(request: web.Request) -> web.Response:
    app = request.app
    peers = app[_PEERS]
    timeout = aiohttp.ClientTimeout(total=5.0)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        fetched = await asyncio.gather(*(_fetch(session, url) for url in peers))
    missing = sum(text is None for text in fetched)
    if missing:
        app[_MISSING].inc(missing)
        logger.warning("%d of %d other worker process(es) did not answer a scrape.", missing,
                       len(peers))  # fmt: skip
    own = exposition.generate_latest(app[_REGISTRY]).decode()
    body = render(merge([own, *(text for text in fetched if text is not None)]))
    return web.Response(body=body, headers={"Content-Type": exposition.CONTENT_TYPE_LATEST})


def make_app(registry: CollectorRegistry, peers: Sequence[str]) -> web.Application:
    """`/metrics` of `registry` summed with the registries served at `peers` (URLs)."""
    app = web.Application()
    app[_REGISTRY] = registry
    app[_PEERS] = tuple(peers)
    app[_MISSING] = Counter(
        "kevents_metrics_workers_missing",
        "Scrapes of the pod's metrics that left out a worker process that did not answer",
        registry=registry,
    )
    app.router.add_get("/metrics", _serve)
    return app
