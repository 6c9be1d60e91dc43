"""`python -m sources.github` as a process: config errors, serving, secrets kept out of logs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

from hack import octokit
from sources.github import signature
from tests import webhooks

PING = octokit.example("ping")


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("K_", "GITHUB_", "KEVENTS_"))}
    env.update(
        NAMESPACE="default",
        GITHUB_OWNER_REPO="Codertocat/Hello-World",
        GITHUB_SECRET_TOKEN=webhooks.SECRET,
        KEVENTS_RECEIVER_HOST="127.0.0.1",
        METRICS_PROMETHEUS_HOST="127.0.0.1",
        METRICS_PROMETHEUS_PORT=str(webhooks.free_port()),
        KEVENTS_PROBES_PORT=str(webhooks.free_port()),
        PORT=str(webhooks.free_port()),
        KEVENTS_LOG_FORMAT="text",
        KEVENTS_LOG_LEVEL="DEBUG",
    )
    env.update(values)
    return env


def test_bad_config_exits_1_naming_every_variable() -> None:
    env = _env(K_SINK="nope", GITHUB_EVENT_TYPES="push,Not An Event", PORT="http")
    del env["GITHUB_SECRET_TOKEN"]
    proc = subprocess.run(
        [sys.executable, "-m", "sources.github"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    for name in ("K_SINK", "GITHUB_SECRET_TOKEN", "GITHUB_EVENT_TYPES", "PORT"):
        assert name in proc.stderr


@pytest.fixture
async def sink() -> AsyncIterator[webhooks.Sink]:
    state = webhooks.Sink()
    await state.start()
    yield state
    await state.stop()


async def test_serves_webhooks_keeps_secrets_out_of_logs_and_stops_on_sigterm(
    sink: webhooks.Sink,
) -> None:
    env = _env(K_SINK=sink.url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sources.github", env=env, stderr=asyncio.subprocess.PIPE
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    good = signature.sign(webhooks.SECRET.encode(), PING.body)
    wrong = signature.sign(b"guess", PING.body)
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    url = f"http://127.0.0.1:{env['KEVENTS_PROBES_PORT']}/readiness"
                    async with http.get(url) as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            for _ in range(200):
                if await ready():
                    break
                await asyncio.sleep(0.05)
            assert await ready(), "the adapter never became ready"
            statuses = []
            for sig in (good, wrong):
                headers = {
                    "X-GitHub-Event": "ping", "X-GitHub-Delivery": "proc-1",
                    signature.HEADER: sig, "Content-Type": "application/json",
                }  # fmt: skip
                async with http.post(base + "/", data=PING.body, headers=headers) as resp:
                    statuses.append(resp.status)
            metrics_url = f"http://127.0.0.1:{env['METRICS_PROMETHEUS_PORT']}/metrics"
            async with http.get(metrics_url) as resp:
                exposition = await resp.text()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=30)
        assert proc.stderr is not None
        logs = (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert statuses == [202, 401]
    assert sink.ids() == ["proc-1"]
    assert 'kevents_github_signature_failures_total{reason="mismatch"} 1.0' in exposition
    assert 'kevents_github_webhooks_total{event="ping",outcome="accepted"} 1.0' in exposition
    assert code == 0
    assert "Refused webhook requests: 1 signature_mismatch." in logs
    for secret in (webhooks.SECRET, good, wrong, good[len("sha256=") :], wrong[len("sha256=") :]):
        assert secret not in logs
