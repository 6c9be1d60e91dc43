"""Leader election through a `coordination.k8s.io/v1` Lease (client-go's leaderelection).

One replica holds the Lease and reconciles; the others wait, ready to take over once the
holder stops renewing for `lease_duration`. Writes use the Lease's resourceVersion, so two
candidates can never both win a round. A leader that cannot renew within `renew_deadline`
raises `LeadershipLost`: the process exits and restarts as a candidate, which is what
controller-runtime does, because a controller that might no longer be leader must stop
writing at once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

from kevents import errors, kubeapi

logger = logging.getLogger(__name__)

LEASES = kubeapi.Resource("coordination.k8s.io", "v1", "leases")


class LeadershipLost(errors.KeventsError):
    """The Lease could not be renewed in time; another replica may be leading now."""


def _micro_time(at: datetime.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class LeaderElector:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
    ) -> None:
        """Defaults are client-go's (15 s / 10 s / 2 s): a crashed leader is replaced
        within ~15 s, and a leader keeps ~5 s margin between giving up and expiry."""
        self.api = api
        self.namespace = namespace
        self.lease_name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.leading = asyncio.Event()
        self._released = asyncio.Event()
        self.name = "leader election"

    async def run(self) -> None:
        logger.info("Waiting to lead as %s (Lease %s/%s).", self.identity, self.namespace,
                    self.lease_name)  # fmt: skip
        while True:
            if await self._try_acquire():
                break
            await asyncio.sleep(self.retry_period)
        logger.info("Became leader: %s holds Lease %s/%s.", self.identity, self.namespace,
                    self.lease_name)  # fmt: skip
        self.leading.set()
        loop = asyncio.get_running_loop()
        last_renew = loop.time()
        while True:
            await asyncio.sleep(self.retry_period)
            if self._released.is_set():
                await asyncio.Event().wait()  # shutting down: never take the Lease back
            if await self._try_acquire():
                last_renew = loop.time()
            elif loop.time() - last_renew > self.renew_deadline:
                self.leading.clear()
                raise LeadershipLost(
                    f"{self.identity} could not renew Lease {self.namespace}/{self.lease_name} "
                    f"within {self.renew_deadline:.0f} s"
                )

    async def release(self) -> None:
        """Give the Lease up on a clean shutdown so a standby takes over at once."""
        if not self.leading.is_set():
            return
        self._released.set()
        self.leading.clear()
        try:
            lease = await self.api.get(LEASES, self.namespace, self.lease_name)
            if lease.get("spec", {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                lease["spec"]["leaseDurationSeconds"] = 1
                await self.api.request("PUT", LEASES.path(self.namespace, self.lease_name),
                                       body=lease)  # fmt: skip
        except kubeapi.ApiError as exc:
            logger.warning("Could not release the Lease: %s", exc)

    async def _try_acquire(self) -> bool:
        now = datetime.datetime.now(datetime.UTC)
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "renewTime": _micro_time(now),
        }
        try:
            lease = await self.api.get_or_none(LEASES, self.namespace, self.lease_name)
            if lease is None:
                spec["acquireTime"] = spec["renewTime"]
                spec["leaseTransitions"] = 0
                await self.api.create(LEASES, self.namespace, {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.lease_name, "namespace": self.namespace},
                    "spec": spec,
                })  # fmt: skip
                return True
            current = lease.get("spec", {})
            holder = current.get("holderIdentity")
            if holder and holder != self.identity and not self._expired(current, now):
                return False
            if holder != self.identity:
                spec["acquireTime"] = spec["renewTime"]
                spec["leaseTransitions"] = int(current.get("leaseTransitions", 0)) + 1
            else:
                spec["acquireTime"] = current.get("acquireTime", spec["renewTime"])
                spec["leaseTransitions"] = int(current.get("leaseTransitions", 0))
            lease["spec"] = spec
            await self.api.request(
                "PUT", LEASES.path(self.namespace, self.lease_name), body=lease
            )  # resourceVersion in the body makes this a compare-and-swap
            return True
        except kubeapi.Conflict:
            return False
        except (kubeapi.ApiError, OSError, TimeoutError) as exc:
            logger.warning("Lease %s/%s: %s", self.namespace, self.lease_name, exc)
            return False

    def _expired(self, spec: dict[str, Any], now: datetime.datetime) -> bool:
        renew = spec.get("renewTime") or spec.get("acquireTime")
        if not renew:
            return True
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        return (now - _parse(str(renew))).total_seconds() > duration
