"""The GitHub receiver faces the internet: unauthenticated floods stay within the pod's memory.

Real `python -m sources.github` processes on loopback, real sockets, a real loopback sink.
Memory is the kernel's high-water mark of the process (`VmHWM`), compared with the memory
limit the controller gives the adapter Deployment.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from controller.framework import sinks
from controller.githubsource import adapter as github_adapter
from hack import octokit
from sources.github import signature
from tests import receiverprocess, webhookfuzz, webhooks

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


FUZZ_REQUESTS = 10_000
FUZZ_MAX_PAYLOAD = 256 * 1024
"""A smaller payload limit than GitHub's 25 MB keeps 10,000 requests within CI's minute; the
25 MB default and 24 MiB bodies are the flood test's."""


async def test_fuzzed_webhooks_get_only_their_answers_and_deliver_exactly_once(
    sink: webhooks.Sink,
) -> None:
    env = {"GITHUB_MAX_PAYLOAD_BYTES": str(FUZZ_MAX_PAYLOAD), "KEVENTS_LOG_LEVEL": "INFO"}
    cases = list(webhookfuzz.cases(17, FUZZ_REQUESTS, max_payload=FUZZ_MAX_PAYLOAD))
    answers: list[tuple[webhookfuzz.Case, int | None, bytes]] = []
    async with receiverprocess.ReceiverProcess(sink.url, env) as receiver:
        pending = iter(cases)

        async def client() -> None:
            for case in pending:
                status, text = await receiverprocess.exchange(receiver.port, case.request)
                answers.append((case, status, text))

        await asyncio.gather(*(client() for _ in range(24)))
        peak = receiver.peak_rss()
        exposition = await receiver.metrics()
        logs = receiver.logs()
    wrong = [(c.kind, s, t[:80]) for c, s, t in answers if s not in c.allowed]
    assert not wrong, f"{len(wrong)} unexpected answers, e.g. {wrong[:5]}"
    assert not [t for _, s, t in answers if s == 202 and t.startswith(b"queued")]
    delivered = Counter(sink.ids())
    assert [i for i, n in delivered.items() if n > 1] == []
    signed = {c.delivery for c in cases if c.delivery is not None}
    assert set(delivered) <= signed
    accepted = {c.delivery for c, s, _ in answers if s == 202}
    assert accepted <= set(delivered)
    kinds = Counter(c.kind for c in cases)
    assert len(accepted) > kinds["valid"] / 2, (len(accepted), kinds)
    limit = deployment_memory_limit()
    assert peak < limit, f"peak RSS {peak / MIB:.0f} MiB >= limit {limit / MIB:.0f} MiB"
    assert "Traceback" not in logs
    assert sum("Refused " in line for line in logs.splitlines()) <= 4, logs
    assert "kevents_http_requests_refused_total" in exposition


async def test_refusals_are_counted_and_summarised_not_logged_one_by_one(
    sink: webhooks.Sink,
) -> None:
    wrong = signature.sign(b"guessed", PING.body)
    bad_signature = _head(PING.body, "bad", wrong) + PING.body
    no_colon = bad_signature.replace(b"\r\n\r\n", b"\r\nNo colon here\r\n\r\n", 1)
    too_long = bad_signature.replace(b"\r\n\r\n", b"\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", 1)
    async with receiverprocess.ReceiverProcess(sink.url) as receiver:
        for request in [bad_signature] * 300 + [no_colon] * 100 + [too_long] * 50:
            status, _ = await receiverprocess.exchange(receiver.port, request)
            assert status in (400, 401)
        exposition = await receiver.metrics()
    logs = receiver.logs().splitlines()  # SIGTERM flushed the last summary
    assert 'kevents_github_signature_failures_total{reason="mismatch"} 300.0' in exposition
    refused = "kevents_http_requests_refused_total"
    assert f'{refused}{{reason="bad_http",server="webhooks"}} 100.0' in exposition
    assert f'{refused}{{reason="line_too_long",server="webhooks"}} 50.0' in exposition
    loud = [line for line in logs if " WARNING " in line or " ERROR " in line]
    # the first of each kind at once, the rest when the process stopped
    assert len(loud) == 4, loud
    assert loud[0].endswith("Refused webhook requests: 1 signature_mismatch.")
    assert loud[1].endswith("Refused malformed HTTP requests on webhooks: 1 bad_http.")
    assert "Refused webhook requests: 299 signature_mismatch in the last" in "".join(loud[2:])
    assert "on webhooks: 99 bad_http, 50 line_too_long in the last" in "".join(loud[2:])
    assert not any("Traceback" in line for line in logs)
