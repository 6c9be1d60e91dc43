"""Container probes: httpGet, tcpSocket and exec, as the kubelet runs them.

httpGet and tcpSocket connect from the host to the pod's IP (the host routes the pod CIDR
over the bridge); exec runs the command inside the container's namespaces with `nsenter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

Obj = dict[str, Any]


@dataclass(frozen=True)
class Result:
    ok: bool
    message: str = ""


def resolve_port(port: object, container: Obj) -> int:
    """A probe port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    for p in container.get("ports") or ():
        if p.get("name") == port:
            return int(p["containerPort"])
    return int(str(port))


async def _http(spec: Obj, host: str, container: Obj, limit: float) -> Result:
    port = resolve_port(spec["port"], container)
    scheme = str(spec.get("scheme", "HTTP")).lower()
    target = spec.get("host") or host
    path = spec.get("path", "/")
    if not path.startswith("/"):
        path = "/" + path
    headers = {h["name"]: h["value"] for h in spec.get("httpHeaders") or ()}
    headers.setdefault("User-Agent", "kube-probe/1.37")
    ctx: ssl.SSLContext | bool = False
    if scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    url = f"{scheme}://{target}:{port}{path}"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as session,
            session.get(url, headers=headers, ssl=ctx, allow_redirects=False) as resp,
        ):
            await resp.read()
            if 200 <= resp.status < 400:
                return Result(True)
            return Result(False, f"HTTP probe failed with statuscode: {resp.status}")
    except (aiohttp.ClientError, OSError, TimeoutError) as err:
        return Result(False, f"Get {url!r}: {type(err).__name__}: {err}")


async def _tcp(spec: Obj, host: str, container: Obj, limit: float) -> Result:
    port = resolve_port(spec["port"], container)
    target = spec.get("host") or host
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(target, port), limit)
    except TimeoutError:
        return Result(False, f"dial tcp {target}:{port}: i/o timeout")
    except OSError as err:
        return Result(False, f"dial tcp {target}:{port}: {err}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Result(True)


async def _exec(spec: Obj, pid: int | None, env: Mapping[str, str], limit: float) -> Result:
    if pid is None:
        return Result(False, "container is not running")
    argv = [
        "nsenter", f"--target={pid}", "--net", "--mount", "--uts", "--", *spec.get("command", []),
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(env),
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return Result(False, f"command timed out after {limit:g}s")
    if proc.returncode == 0:
        return Result(True)
    text = out.decode(errors="replace").strip()[-300:]
    return Result(False, f"command exited with {proc.returncode}: {text}")


async def check(
    probe: Obj, *, host: str, container: Obj, pid: int | None, env: Mapping[str, str]
) -> Result:
    """Run one probe once."""
    timeout = float(probe.get("timeoutSeconds", 1))
    if "httpGet" in probe:
        return await _http(probe["httpGet"], host, container, timeout)
    if "tcpSocket" in probe:
        return await _tcp(probe["tcpSocket"], host, container, timeout)
    if "exec" in probe:
        return await _exec(probe["exec"], pid, env, timeout)
    return Result(False, "probe type not supported by the kevents agent (grpc?)")
