"""CustomResourceDefinitions are served, and watches see ADDED, MODIFIED, DELETED in order."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from kubernetes_asyncio import client, watch

pytestmark = pytest.mark.cluster


def _crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer"}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


async def _wait_established(ext: client.ApiextensionsV1Api, name: str) -> None:
    for _ in range(100):
        crd = await ext.read_custom_resource_definition(name)
        conditions = crd.status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"CRD {name} never became Established")


async def _list_rv(objects: client.CustomObjectsApi, group: str, namespace: str) -> str:
    """The list's resourceVersion, waiting out 429 while the new resource's cache initialises."""
    for _ in range(50):
        try:
            listing = await objects.list_namespaced_custom_object(group, "v1", namespace, "widgets")
        except client.ApiException as err:
            if err.status != 429:
                raise
            await asyncio.sleep(0.2)
            continue
        return str(listing["metadata"]["resourceVersion"])
    raise AssertionError("the new resource was never listable")


async def test_custom_resources_are_created_watched_and_deleted(
    api_client: client.ApiClient, namespace: str
) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.kevents.dev"
    ext = client.ApiextensionsV1Api(api_client)
    objects = client.CustomObjectsApi(api_client)
    crd_name = f"widgets.{group}"
    await ext.create_custom_resource_definition(_crd(group))  # type: ignore[arg-type]
    try:
        await _wait_established(ext, crd_name)
        start_rv = await _list_rv(objects, group, namespace)

        seen: list[tuple[str, int | None]] = []

        async def observe() -> None:
            w = watch.Watch()
            async with w.stream(
                objects.list_namespaced_custom_object,
                group,
                "v1",
                namespace,
                "widgets",
                resource_version=start_rv,
                timeout_seconds=30,
            ) as stream:
                async for event in stream:
                    obj = event["object"]
                    seen.append((event["type"], obj.get("spec", {}).get("size")))
                    if event["type"] == "DELETED":
                        return

        watcher = asyncio.create_task(observe())
        body = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 1},
        }
        await objects.create_namespaced_custom_object(group, "v1", namespace, "widgets", body)
        await objects.patch_namespaced_custom_object(  # type: ignore[call-arg]
            group,
            "v1",
            namespace,
            "widgets",
            "w1",
            {"spec": {"size": 2}},
            _content_type="application/merge-patch+json",
        )
        got = await objects.get_namespaced_custom_object(group, "v1", namespace, "widgets", "w1")
        assert got["spec"]["size"] == 2
        await objects.delete_namespaced_custom_object(group, "v1", namespace, "widgets", "w1")
        await asyncio.wait_for(watcher, timeout=30)
        assert seen == [("ADDED", 1), ("MODIFIED", 2), ("DELETED", 2)]
    finally:
        await ext.delete_custom_resource_definition(crd_name)
