"""The node agent's pod network (`hack.agent.network.Network`) with real namespaces, veths and
sockets, on a bridge of the test's own (not the running agent's `kev0`).

A deleted pod's address goes to the next pod at once; the node and the other pods must reach
the new pod there straight away. Before, the node kept the deleted pod's MAC for the address
for 15-50 s, so the new pod's liveness tcpSocket probes timed out and it was killed (CI: the
web Deployment of tests/e2e/test_node_agent.py restarted twice before the test killed it).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from hack.agent import network, probes

LISTENER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 8080))
s.listen()
print("up", flush=True)
while True:
    s.accept()[0].close()
"""


CONNECT = """
import socket, sys
socket.create_connection((sys.argv[1], 8080), timeout=5).close()
"""


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@pytest.fixture
def bridge() -> Iterator[tuple[str, str]]:
    """A bridge with the first address of a /24 of its own: (bridge, cidr)."""
    name = f"kevt{uuid.uuid4().hex[:8]}"
    third = random.randrange(1, 255)
    cidr = f"10.254.{third}.0/24"
    # A fixed MAC, as kev0's is in effect with many ports: a bridge whose MAC follows its
    # lowest port's would flush its neighbour entries whenever a pod's port goes.
    sh("ip", "link", "add", name, "address", "02:6b:65:76:00:01", "type", "bridge")
    try:
        sh("ip", "addr", "add", f"10.254.{third}.1/24", "dev", name)
        sh("ip", "link", "set", name, "up")
        yield name, cidr
    finally:
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


class Pods:
    """Pod networks on the test's bridge, all removed at the end."""

    def __init__(self, net: network.Network) -> None:
        self.net = net
        self.added: list[network.PodNetwork] = []

    async def add(self) -> network.PodNetwork:
        pn = await self.net.add_pod(uuid.uuid4().hex)
        self.added.append(pn)
        return pn


@pytest.fixture
async def pods(bridge: tuple[str, str]) -> AsyncIterator[Pods]:
    name, cidr = bridge
    made = Pods(network.Network(cidr, bridge=name))
    try:
        yield made
    finally:
        for pn in made.added:
            await made.net.remove_pod(pn)


class Listener:
    """A TCP listener on port 8080 inside a pod's network namespace."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, pn: network.PodNetwork) -> Listener:
        proc = await asyncio.create_subprocess_exec(
            "nsenter", f"--net={pn.netns_path}", "--", sys.executable, "-c", LISTENER,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        assert await proc.stdout.readline() == b"up\n"
        return cls(proc)

    async def stop(self) -> None:
        self.proc.kill()
        await self.proc.wait()


async def connect_from(pn: network.PodNetwork, ip: str) -> int:
    """Connect from inside `pn`'s namespace to ip:8080 (5 s); the exit code (0: connected)."""
    proc = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={pn.netns_path}", "--", sys.executable, "-c", CONNECT, ip,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await proc.wait()


async def tcp_probe(ip: str) -> probes.Result:
    """The agent's liveness tcpSocket probe from the node (5 s, not the default 1 s: the
    machine may be loaded; a stale address never answers at all)."""
    probe = {"tcpSocket": {"port": 8080}, "timeoutSeconds": 5}
    return await probes.check(probe, host=ip, container={}, pid=None, env={})


async def test_a_pod_on_a_deleted_pods_address_is_reached_at_once(pods: Pods) -> None:
    # Another pod stays, as on a node: a bridge losing its last port loses its carrier, and
    # with it every neighbour entry.
    peer = await pods.add()
    old = await pods.add()
    listener = await Listener.start(old)
    # The node and the peer have talked to the old pod: both hold its MAC for the address.
    assert (await tcp_probe(old.ip)).ok
    assert await connect_from(peer, old.ip) == 0
    await listener.stop()
    await pods.net.remove_pod(old)

    new = await pods.add()
    assert new.ip == old.ip
    listener = await Listener.start(new)
    try:
        result = await tcp_probe(new.ip)
        assert result.ok, result.message
        assert await connect_from(peer, new.ip) == 0
    finally:
        await listener.stop()
