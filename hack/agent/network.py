"""Pod networking on the host: a bridge, one network namespace + veth per pod, our nft table.

    host:  kev0 (bridge, first address of the node's podCIDR)
             └── kevh<id> (veth) ──── eth0 in netns kev-<id> (pod IP, default route via kev0)

Forwarding is enabled for packets arriving on the bridge only (`net.ipv4.conf.kev0.forwarding`),
and the `inet kevents` table lets forwarded traffic go from pods to pods only: pods reach each
other, Service ClusterIPs (kube-proxy DNATs them to pod IPs or to the node's bridge address) and
the node's bridge address, never another network. Every name we create starts with `kev`, so
`cleanup()` can remove exactly ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import logging
import os
import pathlib
import subprocess
import sys
from dataclasses import dataclass

from hack.agent import errors

log = logging.getLogger(__name__)

BRIDGE = "kev0"
NETNS_PREFIX = "kev-"
VETH_PREFIX = "kevh"
PEER_PREFIX = "kevp"
NFT_TABLE = "kevents"
LOCK = pathlib.Path("/run/kevents-pod-network.lock")
"""Held by the agent that owns the pod network: one local cluster per host can have it."""

_RULES = f"""
table inet {NFT_TABLE} {{
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{BRIDGE}" oifname "{BRIDGE}" accept comment "pod to pod, and Service traffic"
        iifname "{BRIDGE}" drop comment "pods reach no other network"
        oifname "{BRIDGE}" drop comment "no other network reaches pods"
    }}
}}
"""


async def run(*argv: str, stdin: str | None = None, check: bool = True) -> str:
    """Run a host command; NetworkError with its stderr when it fails and `check`."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if check and proc.returncode != 0:
        raise errors.NetworkError(f"{' '.join(argv)} failed: {err.decode().strip()}")
    return out.decode()


def lock() -> int:
    """Take LOCK for the life of this process; NetworkError when another agent holds it."""
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise errors.NetworkError(
            "another kevents node agent owns the pod network on this host"
        ) from None
    return fd


def lock_free() -> bool:
    """True when no agent holds LOCK right now."""
    try:
        fd = lock()
    except (errors.NetworkError, OSError):
        return False
    with contextlib.suppress(OSError):
        os.close(fd)
    return True


_BR_FORWARDING = "3"
"""A bridge port's state in sysfs once it forwards frames (BR_STATE_FORWARDING)."""

_GARP = """
import socket, sys
ip = socket.inet_aton(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
mac = s.getsockname()[4]
arp = bytes([0, 1, 8, 0, 6, 4, 0, 1]) + mac + ip + bytes(6) + ip
s.send(bytes([255]) * 6 + mac + bytes([8, 6]) + arp)
"""
"""Broadcast an ARP request for the pod's own address from eth0 (argv[1]: the address)."""


def _port_state(veth: str) -> str:
    """The bridge port state of `veth` from sysfs (a kernel attribute: never blocks)."""
    try:
        return pathlib.Path(f"/sys/class/net/{veth}/brport/state").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class PodNetwork:
    """One pod's network: its namespace, host-side veth and address."""

    netns: str
    veth: str
    ip: str

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"


class Network:
    """Addresses from the node's podCIDR and the host plumbing around them."""

    def __init__(self, pod_cidr: str, *, bridge: str = BRIDGE) -> None:
        self.cidr = ipaddress.ip_network(pod_cidr)
        self.bridge = bridge
        """The bridge pods attach to: `setup_host` makes BRIDGE; a test brings its own."""
        hosts = self.cidr.hosts()
        self.gateway = str(next(hosts))
        self._free = [str(ip) for ip in hosts]
        self._used: set[str] = set()

    @property
    def prefix(self) -> int:
        return self.cidr.prefixlen

    async def setup_host(self) -> None:
        """Create (or re-use) the bridge with the gateway address and our nft table."""
        links = await run("ip", "-o", "link", "show", "type", "bridge")
        if f": {BRIDGE}:" not in links:
            await run("ip", "link", "add", BRIDGE, "type", "bridge")
        addrs = await run("ip", "-o", "-4", "addr", "show", "dev", BRIDGE)
        if f"{self.gateway}/{self.prefix}" not in addrs:
            await run("ip", "addr", "flush", "dev", BRIDGE)
            await run("ip", "addr", "add", f"{self.gateway}/{self.prefix}", "dev", BRIDGE)
        await run("ip", "link", "set", BRIDGE, "up")
        await run("sysctl", "-q", "-w", f"net.ipv4.conf.{BRIDGE}.forwarding=1")
        await run("nft", "delete", "table", "inet", NFT_TABLE, check=False)
        await run("nft", "-f", "-", stdin=_RULES)
        log.info("Bridge %s is up at %s/%s.", BRIDGE, self.gateway, self.prefix)

    def _allocate(self) -> str:
        for ip in self._free:
            if ip not in self._used:
                self._used.add(ip)
                return ip
        raise errors.NetworkError(f"no free address left in {self.cidr}")

    async def add_pod(self, uid: str) -> PodNetwork:
        """A fresh namespace with loopback and eth0 (a veth on the bridge) up."""
        short = uid.replace("-", "")[:10]
        pn = PodNetwork(netns=NETNS_PREFIX + short, veth=VETH_PREFIX + short, ip=self._allocate())
        peer = PEER_PREFIX + short
        try:
            await self._remove(pn)
            await run("ip", "netns", "add", pn.netns)
            await run(
                "ip", "link", "add", pn.veth, "type", "veth", "peer", "name", peer,
                "netns", pn.netns,
            )  # fmt: skip
            await run("ip", "link", "set", pn.veth, "master", self.bridge, "up")
            # Hairpin, as the kubelet's hairpin-veth mode: a pod reaching itself through a
            # Service (the dispatcher delivering to its own channels' addresses, as a
            # Sequence's replies do) gets its frame back out of the port it came in by.
            await run("ip", "link", "set", pn.veth, "type", "bridge_slave", "hairpin", "on")
            ns = ("ip", "-n", pn.netns)
            await run(*ns, "link", "set", peer, "name", "eth0")
            await run(*ns, "addr", "add", f"{pn.ip}/{self.prefix}", "dev", "eth0")
            await run(*ns, "link", "set", "eth0", "up")
            await run(*ns, "link", "set", "lo", "up")
            await run(*ns, "route", "add", "default", "via", self.gateway)
            await self._announce(pn)
        except BaseException:
            await asyncio.shield(self.remove_pod(pn))
            raise
        return pn

    async def _announce(self, pn: PodNetwork) -> None:
        """A gratuitous ARP from the pod's eth0, as the CNI bridge plugin sends: other pods
        that map this (reused) address to a deleted pod's MAC learn the new one, so their
        answers to this pod (a Service's backend replying to it) are not lost for 15-50 s.

        Sent once the bridge port forwards (the veth's carrier reaches the bridge a moment
        after eth0 comes up; before, the frame is dropped, so `arp_notify` is no use here)."""
        for _ in range(250):
            if _port_state(pn.veth) == _BR_FORWARDING:
                break
            await asyncio.sleep(0.02)
        await run("ip", "netns", "exec", pn.netns, sys.executable, "-c", _GARP, pn.ip)

    async def _remove(self, pn: PodNetwork) -> None:
        await run("ip", "link", "del", pn.veth, check=False)
        await run("ip", "netns", "del", pn.netns, check=False)
        # Addresses are reused at once: the node's neighbour entry for this one would keep
        # sending to the deleted pod's MAC (the bridge floods it, the new pod drops it) for
        # 15-50 s, and probes from the node (a liveness tcpSocket) time out meanwhile.
        await run("ip", "neigh", "del", pn.ip, "dev", self.bridge, check=False)

    async def remove_pod(self, pn: PodNetwork) -> None:
        await self._remove(pn)
        self._used.discard(pn.ip)


def cleanup(*, pods_only: bool = False) -> list[str]:
    """Remove every netns, veth, bridge and nft table of ours (synchronous, for `down`).

    `pods_only` removes just the pods' namespaces and veths (an agent starting over).
    """
    removed: list[str] = []

    def sh(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    netns_dir = pathlib.Path("/run/netns")
    if netns_dir.is_dir():
        for entry in sorted(netns_dir.iterdir()):
            if (
                entry.name.startswith(NETNS_PREFIX)
                and sh("ip", "netns", "del", entry.name).returncode == 0
            ):
                removed.append(f"netns {entry.name}")
    for line in sh("ip", "-o", "link", "show").stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        ours = name.startswith(VETH_PREFIX) or (name == BRIDGE and not pods_only)
        if ours and sh("ip", "link", "del", name).returncode == 0:
            removed.append(f"link {name}")
    if pods_only:
        return removed
    tables = sh("nft", "list", "tables").stdout.split()
    for family, table in (("inet", NFT_TABLE), ("ip", "kube-proxy"), ("ip6", "kube-proxy")):
        if table in tables and sh("nft", "delete", "table", family, table).returncode == 0:
            removed.append(f"nft table {family} {table}")
    return removed


def leftovers() -> list[str]:
    """What of ours still exists on the host (empty after a clean `down`)."""
    found: list[str] = []
    netns_dir = pathlib.Path("/run/netns")
    if netns_dir.is_dir():
        found += [f"netns {e.name}" for e in netns_dir.iterdir() if e.name.startswith(NETNS_PREFIX)]
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith((VETH_PREFIX, BRIDGE)):
            found.append(f"link {name}")
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    for line in nft.stdout.splitlines():
        if line.split()[-1:] in ([NFT_TABLE], ["kube-proxy"]):
            found.append(line.strip())
    return found
