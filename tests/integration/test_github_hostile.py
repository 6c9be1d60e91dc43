"""The GitHub receiver faces the internet: unauthenticated floods stay within the pod's memory.

Real `python -m sources.github` processes on loopback, real sockets, a real loopback sink.
Memory is the kernel's high-water mark of the process (`VmHWM`), compared with the memory
limit the controller gives the adapter Deployment.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from controller.framework import sinks
from controller.githubsource import adapter as github_adapter
from hack import octokit
from sources.github import signature
from tests import receiverprocess, webhooks

PING = octokit.example("ping")
MIB = receiverprocess.MIB


def deployment_memory_limit() -> int:
    """Bytes: `resources.limits.memory` of the adapter Deployment the controller writes."""
    inputs = github_adapter.Inputs(
        name="gh", namespace="default", uid="0", sink=sinks.Address("http://sink/"),
        owner_and_repository="o/r", event_types=(), secret_version="1",
        secret_token={"name": "s", "key": "k"},
    )  # fmt: skip
    config = github_adapter.Config(image="kevents", system_namespace="knative-eventing")
    pod = github_adapter.deployment(inputs, config)["spec"]["template"]["spec"]
    limit = str(pod["containers"][0]["resources"]["limits"]["memory"])
    assert limit.endswith("Mi"), limit
    return int(limit[:-2]) * MIB


@pytest.fixture
async def sink() -> AsyncIterator[webhooks.Sink]:
    state = webhooks.Sink()
    await state.start()
    yield state
    await state.stop()


def _padded(size: int) -> bytes:
    """A ping payload of exactly `size` bytes (padding in one JSON string)."""
    body = json.dumps({**PING.payload, "padding": ""}).encode()
    return body[:-2] + b"x" * (size - len(body)) + body[-2:]


def _head(body: bytes, delivery: str, sig: str) -> bytes:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": delivery,
        signature.HEADER: sig,
    }
    return receiverprocess.request_head(headers, content_length=len(body))


async def test_40_parallel_24_mib_bad_signatures_stay_under_the_memory_limit(
    sink: webhooks.Sink,
) -> None:
    limit = deployment_memory_limit()
    big = _padded(24 * MIB)
    wrong = signature.sign(b"not-the-secret", big)
    good = signature.sign(webhooks.SECRET.encode(), PING.body)
    async with receiverprocess.ReceiverProcess(sink.url) as receiver:
        floods = [
            receiverprocess.exchange(receiver.port, _head(big, f"bad-{i}", wrong), big)
            for i in range(40)
        ]
        flood = asyncio.gather(*floods)
        valid = await receiverprocess.exchange(
            receiver.port, _head(PING.body, "the-valid-one", good), PING.body
        )
        statuses = [status for status, _ in await flood]
        peak = receiver.peak_rss()
        exposition = await receiver.metrics()
    answered = {status: statuses.count(status) for status in set(statuses)}
    assert None not in answered, f"unanswered requests: {answered}"
    assert set(answered) <= {401, 429, 503}, answered
    assert answered.get(401, 0) >= 1, answered  # the budget lets some be read and refused
    assert peak < limit, f"peak RSS {peak / MIB:.0f} MiB >= limit {limit / MIB:.0f} MiB"
    assert valid[0] == 202, valid
    assert sink.ids() == ["the-valid-one"]
    assert 'kevents_github_signature_failures_total{reason="mismatch"}' in exposition
