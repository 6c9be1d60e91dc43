"""Sink resolution rules that need no apiserver: refs, URL joins, address picking."""

from __future__ import annotations

from typing import Any

import pytest

from controller.framework import sinks

REFS: dict[str, tuple[Any, sinks.Ref | None]] = {
    "no-ref": ({"uri": "http://a.b"}, None),
    "namespace-defaulted": (
        {"ref": {"apiVersion": "v1", "kind": "Service", "name": "s"}},
        sinks.Ref("v1", "Service", "parent-ns", "s"),
    ),
    "namespace-kept": (
        {"ref": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
                 "name": "c", "namespace": "other"}},
        sinks.Ref("messaging.knative.dev/v1", "InMemoryChannel", "other", "c"),
    ),
    "named-address": (
        {"ref": {"apiVersion": "v1", "kind": "X", "name": "x", "address": "https"}},
        sinks.Ref("v1", "X", "parent-ns", "x", "https"),
    ),
}  # fmt: skip


@pytest.mark.parametrize(("destination", "want"), REFS.values(), ids=REFS.keys())
def test_ref_of(destination: Any, want: sinks.Ref | None) -> None:
    assert sinks.ref_of(destination, "parent-ns") == want


def test_service_url() -> None:
    assert sinks.service_url("event-display", "ns") == "http://event-display.ns.svc.cluster.local"


JOINS = {
    "no-uri": ("http://h.ns.svc.cluster.local", None, "http://h.ns.svc.cluster.local"),
    "absolute-path": ("http://h.ns.svc.cluster.local/base", "/events", "http://h.ns.svc.cluster.local/events"),
    "relative-path": ("http://h/base/", "sub", "http://h/base/sub"),
    "query": ("http://h/path", "?x=1", "http://h/path?x=1"),
    "broker-path": ("http://broker-ingress.ks.svc.cluster.local/ns/default", "extra", "http://broker-ingress.ks.svc.cluster.local/ns/extra"),
}  # fmt: skip


@pytest.mark.parametrize(("base", "uri", "want"), JOINS.values(), ids=JOINS.keys())
def test_join_resolves_relative_uri_like_rfc3986(base: str, uri: str | None, want: str) -> None:
    assert sinks.join(base, uri) == want


ADDRESSES: dict[str, tuple[dict[str, Any], str, Any]] = {
    "address": ({"address": {"url": "http://a"}}, "", {"url": "http://a"}),
    "missing": ({}, "", None),
    "named": (
        {"address": {"url": "http://a"},
         "addresses": [{"name": "http", "url": "http://a"}, {"name": "https", "url": "https://a"}]},
        "https", {"name": "https", "url": "https://a"},
    ),
    "named-missing": ({"addresses": [{"name": "http", "url": "http://a"}]}, "https", None),
}  # fmt: skip


@pytest.mark.parametrize(("status", "name", "want"), ADDRESSES.values(), ids=ADDRESSES.keys())
def test_pick_address(status: dict[str, Any], name: str, want: Any) -> None:
    assert sinks.pick_address(status, name) == want


def test_describe_names_kind_and_object() -> None:
    ref = sinks.Ref("v1", "Service", "ns", "svc")
    assert ref.describe() == 'Service "ns/svc" (v1)'
    assert ref.is_service
