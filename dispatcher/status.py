"""Reporting `status.subscribers` of InMemoryChannels, as Knative's IMC dispatcher does.

The Subscription reconciler reads each entry (`uid`, `observedGeneration`, `ready`,
`message`) to mark its Subscription ready. The reporter only ever writes that list: a JSON
merge patch of `{"status": {"subscribers": [...]}}` on the status subresource leaves the
controller's conditions and address alone. Wanted states are coalesced per channel and
written off the informer's path; a failed patch is retried, a vanished channel forgotten.
"""

from __future__ import annotations

import asyncio
import logging

from dispatcher import channels
from kevents import kubeapi

logger = logging.getLogger(__name__)

CHANNELS = kubeapi.Resource("messaging.knative.dev", "v1", "inmemorychannels")


class StatusReporter:
    def __init__(self, api: kubeapi.KubeApi, *, retry_delay: float = 1.0) -> None:
        """`retry_delay` (1 s) between attempts after a failed patch: quick recovery from a
        restarting API server without hammering it."""
        self._api = api
        self._retry_delay = retry_delay
        self._wanted: dict[channels.Key, list[channels.SubscriberStatus]] = {}
        self._dirty: set[channels.Key] = set()
        self._wake = asyncio.Event()
        self.patches = 0
        """Successful patches (diagnostics and tests)."""

    def want(self, key: channels.Key, statuses: list[channels.SubscriberStatus]) -> None:
        self._wanted[key] = statuses
        self._dirty.add(key)
        self._wake.set()

    def forget(self, key: channels.Key) -> None:
        self._wanted.pop(key, None)
        self._dirty.discard(key)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            failed = False
            for key in list(self._dirty):
                self._dirty.discard(key)
                wanted = self._wanted.get(key)
                if wanted is not None and not await self._patch(key, wanted):
                    self._dirty.add(key)
                    failed = True
            if failed:
                await asyncio.sleep(self._retry_delay)
                self._wake.set()

    async def _patch(self, key: channels.Key, wanted: list[channels.SubscriberStatus]) -> bool:
        namespace, name = key
        try:
            await self._api.merge_patch(
                CHANNELS, namespace, name, {"status": {"subscribers": wanted}}, subresource="status"
            )
        except kubeapi.NotFound:
            self.forget(key)
            return True
        except (kubeapi.ApiError, TimeoutError) as exc:
            logger.warning(
                "Could not report subscriber status of channel %s/%s (%s); retrying.",
                namespace, name, exc,
                extra={"namespace": namespace, "object_name": name},
            )  # fmt: skip
            return False
        self.patches += 1
        ready = sum(s.get("ready") == "True" for s in wanted)
        logger.info(
            "Reported %d of %d subscriber(s) of channel %s/%s ready.",
            ready, len(wanted), namespace, name,
            extra={"namespace": namespace, "object_name": name},
        )  # fmt: skip
        return True
