"""Leader election through a `coordination.k8s.io/v1` Lease, for any component.

One replica holds the Lease and works; the others stand by and take over once the holder
has not renewed it for `lease_duration`. Every write carries the resourceVersion last read,
so two candidates can never both win a round (compare-and-swap).

Timing follows client-go's leaderelection, skew-proof: a candidate judges expiry by its own
monotonic clock (how long the record it observed has stayed unchanged), never by comparing
the record's `renewTime` with its wall clock. The leader counts itself leader only while its
last successful renewal *started* less than `renew_deadline` ago (`is_leader`), and
`renew_deadline < lease_duration`, so it stops working before anyone may take over. Each
round of renewal attempts is cut at that deadline (a hung apiserver cannot keep `leading`
set past it), and every Lease request has a `retry_period` timeout.

`record(annotations)` is a fenced write: it succeeds only while this replica still holds the
Lease, so work committed through it (e.g. "tick T is being fired") is never committed by two
replicas. Losing the Lease clears `leading` and sets `lost` at once (work gated on them
stops: the controller cancels its reconcilers); with `rejoin=True` the elector becomes a
candidate again (the ping adapter), else `run()` raises `LeadershipLost` (the controller,
controller-runtime's choice: exit and restart as a candidate).
`stop()` (the runner's hook) releases the Lease so a standby takes over immediately.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypedDict, cast

import orjson

from kevents import errors, kubeapi

logger = logging.getLogger(__name__)


class LeadershipLost(errors.KeventsError):
    """The Lease could not be renewed in time; another replica may be leading now."""


class LeaseSpec(TypedDict, total=False):
    holderIdentity: str | None
    leaseDurationSeconds: int
    acquireTime: str
    renewTime: str
    leaseTransitions: int


class Lease(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    spec: LeaseSpec


LEASES = kubeapi.Resource("coordination.k8s.io", "v1", "leases")

_FAILURES = (kubeapi.ApiError, TimeoutError, OSError)
"""A Lease request that failed without telling us anything about who holds it."""


def _micro_time(at: datetime.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        rejoin: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Defaults are client-go's (15 s / 10 s / 2 s): a crashed leader is replaced within
        ~17 s, and a leader that cannot renew stops ~5 s before anyone may take over."""
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise errors.ConfigError(
                ["leader election needs 0 < retry_period < renew_deadline < lease_duration"]
            )
        self._api = api
        self.namespace = namespace
        self.lease_name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._rejoin = rejoin
        self._monotonic = monotonic
        self.name = "leader election"
        self.leading = asyncio.Event()
        """Set while this replica leads (check `is_leader` before each piece of work)."""
        self.lost = asyncio.Event()
        """Set when leadership ends (cleared again on the next acquisition)."""
        self._lease: Lease | None = None
        self._renewed_at = float("-inf")
        self._observed: tuple[str, str] = ("", "")
        self._observed_at = 0.0
        self._lock = asyncio.Lock()
        self._stopping = False

    @property
    def path(self) -> str:
        return LEASES.path(self.namespace, self.lease_name)

    @property
    def _request_timeout(self) -> float:
        """Each Lease request gets `retry_period` (2 s): a hung apiserver costs one round."""
        return self.retry_period

    @property
    def is_leader(self) -> bool:
        """True while leading and the last renewal started less than `renew_deadline` ago."""
        return self.leading.is_set() and self._monotonic() - self._renewed_at < self.renew_deadline

    def annotations(self) -> dict[str, str]:
        """The Lease's annotations as last read or written (e.g. a predecessor's checkpoint)."""
        if self._lease is None:
            return {}
        return dict((self._lease.get("metadata") or {}).get("annotations") or {})

    async def run(self) -> None:
        """Campaign, lead and renew until cancelled (or `LeadershipLost` without rejoin)."""
        while True:
            logger.info("Waiting to lead as %s (Lease %s/%s).", self.identity, self.namespace,
                        self.lease_name)  # fmt: skip
            await self._campaign()
            self.lost.clear()
            self.leading.set()
            logger.info("Became leader: %s holds Lease %s/%s.", self.identity, self.namespace,
                        self.lease_name)  # fmt: skip
            why = await self._renew_while_leading()
            self._step_down(why)
            if not self._rejoin:
                raise LeadershipLost(
                    f"{self.identity} lost Lease {self.namespace}/{self.lease_name} ({why})"
                )

    async def _renew_while_leading(self) -> str:
        """Renew every `retry_period` until a renewal cannot succeed in time; say why.

        Each round of attempts is bounded by the renew deadline itself (client-go's
        `renewDeadline` context): a hung request is cut there, so `leading` is cleared at
        the latest `renew_deadline` after the last renewal started, never later.
        """
        while True:
            await asyncio.sleep(self.retry_period)
            if self._stopping:
                await asyncio.Event().wait()  # released: never take the Lease back
            if not self.leading.is_set():
                return "a fenced write found the Lease taken"
            remaining = self._renewed_at + self.renew_deadline - self._monotonic()
            try:
                async with asyncio.timeout(max(0.0, remaining)):
                    while not await self._try_acquire_or_renew():
                        if not self.leading.is_set():
                            return "another replica holds the Lease"
                        await asyncio.sleep(self.retry_period)
            except TimeoutError:
                return f"could not renew within {self.renew_deadline:.1f} s"

    async def _campaign(self) -> None:
        """Try to acquire every `retry_period` until it succeeds."""
        while True:
            if await self._try_acquire_or_renew():
                return
            await asyncio.sleep(self.retry_period)

    async def stop(self) -> None:
        """Runner hook: give the Lease up so a standby takes over at once."""
        self._stopping = True
        if not self.leading.is_set():
            return
        self._step_down("shutting down")
        async with self._lock:
            lease = self._lease
            if lease is None or lease.get("spec", {}).get("holderIdentity") != self.identity:
                return
            spec = lease.setdefault("spec", {})
            spec["holderIdentity"] = None
            spec["leaseDurationSeconds"] = 1
            try:
                await self._write("PUT", self.path, lease)
                logger.info("Released Lease %s/%s.", self.namespace, self.lease_name)
            except _FAILURES as exc:
                logger.warning("Could not release Lease %s: %s", self.lease_name, exc)

    async def record(self, annotations: Mapping[str, str]) -> bool:
        """Write `annotations` onto the Lease, fenced: True only if we still hold it.

        A False answer means leadership is gone (or the write failed): stop working.
        """
        if not self.is_leader:
            return False
        async with self._lock:
            if not self.is_leader or self._lease is None:
                return False
            lease: Lease = orjson.loads(orjson.dumps(self._lease))
            meta = lease.setdefault("metadata", {})
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
            started = self._monotonic()
            lease.setdefault("spec", {})["renewTime"] = _micro_time(
                datetime.datetime.now(datetime.UTC)
            )
            try:
                self._lease = await self._write("PUT", self.path, lease)
            except kubeapi.Conflict:
                self._step_down("the Lease was taken over")
                return False
            except _FAILURES as exc:
                logger.warning("Fenced write to Lease %s/%s failed: %s", self.namespace,
                               self.lease_name, exc)  # fmt: skip
                return False
            self._renewed_at = started
            return True

    def _step_down(self, why: str) -> None:
        if self.leading.is_set():
            logger.warning("Stopped leading (%s): %s no longer holds Lease %s/%s.", why,
                           self.identity, self.namespace, self.lease_name)  # fmt: skip
        self.leading.clear()
        self.lost.set()

    def _expired(self, lease: Lease) -> bool:
        """Whether the record we see has stayed unchanged for its lease duration."""
        spec = lease.get("spec") or {}
        key = (str(spec.get("holderIdentity") or ""), str(spec.get("renewTime") or ""))
        now = self._monotonic()
        if key != self._observed:
            self._observed, self._observed_at = key, now
        if not key[0]:
            return True  # released
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        return now - self._observed_at > duration

    async def _try_acquire_or_renew(self) -> bool:
        async with self._lock:
            started = self._monotonic()
            now = _micro_time(datetime.datetime.now(datetime.UTC))
            try:
                lease = await self._read()
                if lease is None:
                    spec: LeaseSpec = {
                        "holderIdentity": self.identity,
                        "leaseDurationSeconds": max(1, round(self.lease_duration)),
                        "acquireTime": now, "renewTime": now, "leaseTransitions": 0,
                    }  # fmt: skip
                    body: Lease = {
                        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.lease_name, "namespace": self.namespace},
                        "spec": spec,
                    }  # fmt: skip
                    self._lease = await self._write("POST", LEASES.path(self.namespace), body)
                else:
                    current = lease.get("spec") or {}
                    holder = current.get("holderIdentity")
                    mine = holder == self.identity
                    if not mine and not self._expired(lease):
                        self._lease = lease
                        if self.leading.is_set():
                            self._step_down(f"{holder} holds the Lease now")
                        return False
                    new: LeaseSpec = {
                        **current,
                        "holderIdentity": self.identity,
                        "leaseDurationSeconds": max(1, round(self.lease_duration)),
                        "renewTime": now,
                    }
                    if not mine:
                        new["acquireTime"] = now
                        new["leaseTransitions"] = int(current.get("leaseTransitions") or 0) + 1
                    lease["spec"] = new
                    self._lease = await self._write("PUT", self.path, lease)
            except kubeapi.Conflict:
                if self.leading.is_set():
                    self._step_down("the Lease was taken over")
                return False
            except _FAILURES as exc:
                logger.warning("Lease %s/%s: %s", self.namespace, self.lease_name, exc)
                return False
            self._renewed_at = started
            return True

    async def _read(self) -> Lease | None:
        try:
            doc = await self._api.request("GET", self.path, request_timeout=self._request_timeout)
        except kubeapi.NotFound:
            return None
        return cast(Lease, doc)

    async def _write(self, method: str, path: str, body: Lease) -> Lease:
        """POST/PUT a Lease; a 409 (stale resourceVersion, or it exists) is `kubeapi.Conflict`."""
        doc = await self._api.request(
            method, path, body=body, request_timeout=self._request_timeout
        )
        return cast(Lease, doc)
