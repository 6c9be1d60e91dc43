"""`kevents.kubeapi.KubeApi` against an apiserver that accepts a request and never answers:
the request ends after its timeout as `Unreachable` (an `ApiError`, which every retry loop
treats as transient), not as a bare `TimeoutError` that escapes them and stops a component."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from kubernetes_asyncio import client

from kevents import kubeapi


@pytest.fixture
async def silent_apiserver() -> AsyncIterator[str]:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        raise AssertionError("never answered")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        never.set()
        await runner.cleanup()


async def test_a_request_without_an_answer_ends_as_unreachable(silent_apiserver: str) -> None:
    configuration = client.Configuration(host=silent_apiserver)
    async with client.ApiClient(configuration) as api_client:
        api = kubeapi.KubeApi(api_client)
        with pytest.raises(kubeapi.Unreachable, match=r"no answer within 0\.3 s") as raised:
            await api.request("GET", "/api/v1/namespaces/default/secrets/x", request_timeout=0.3)
        assert isinstance(raised.value, kubeapi.ApiError)


def test_a_create_in_a_namespace_being_deleted_is_its_own_forbidden() -> None:
    # the apiserver's answer, as the local cluster's kube-apiserver sent it
    body = (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
        b'"configmaps \\"x\\" is forbidden: unable to create new content in namespace tt-w '
        b'because it is being terminated","reason":"Forbidden","details":{"name":"x",'
        b'"kind":"configmaps","causes":[{"reason":"NamespaceTerminating","message":'
        b'"namespace tt-w is being terminated","field":"metadata.namespace"}]},"code":403}'
    )
    error = kubeapi._error(403, body, "POST", "/api/v1/namespaces/tt-w/configmaps")
    assert isinstance(error, kubeapi.NamespaceTerminating)
    assert isinstance(error, kubeapi.Forbidden)
    assert "being terminated" in error.message
    rbac = b'{"kind":"Status","reason":"Forbidden","message":"cannot create","code":403}'
    assert type(kubeapi._error(403, rbac, "POST", "/x")) is kubeapi.Forbidden
    assert type(kubeapi._error(403, b"not json", "POST", "/x")) is kubeapi.Forbidden
