"""Routing a request to a channel and choosing the headers that travel with the event."""

from __future__ import annotations

import pytest

from dispatcher import headers, routing


@pytest.mark.parametrize(
    ("host", "path", "key"),
    [
        ("orders-kn-channel.shop.svc.cluster.local", "/", ("shop", "orders")),
        ("orders-kn-channel.shop.svc.cluster.local:80", "/", ("shop", "orders")),
        ("Orders-KN-Channel.Shop.svc.cluster.local", "/", ("shop", "orders")),
        ("orders-kn-channel.shop", "/", ("shop", "orders")),
        ("orders.shop.svc", "/", ("shop", "orders")),
        ("127.0.0.1:8000", "/shop/orders", ("shop", "orders")),
        ("anything", "/shop/orders/", ("shop", "orders")),
        ("orders-kn-channel.shop.svc.cluster.local", "/other/ch", ("other", "ch")),
    ],
    ids=[
        "host",
        "host-port",
        "host-case",
        "short-host",
        "no-suffix",
        "path",
        "path-trailing-slash",
        "path-wins",
    ],
)
def test_resolve(host: str, path: str, key: tuple[str, str]) -> None:
    assert routing.resolve(host, path) == key


@pytest.mark.parametrize(
    ("host", "path", "reason"),
    [
        ("localhost", "/", "cannot tell the channel from Host 'localhost'"),
        ("", "/", "cannot tell the channel from Host"),
        (".shop", "/", "cannot tell the channel"),
        ("h.ns", "/a/b/c", "path '/a/b/c' names no channel"),
        ("h.ns", "/only", "path '/only' names no channel"),
        ("h.ns", "//x", "names no channel"),
    ],
    ids=["one-label", "empty-host", "empty-name", "three-segments", "one-segment", "empty-ns"],
)
def test_resolve_rejects_with_400(host: str, path: str, reason: str) -> None:
    with pytest.raises(routing.RoutingError) as caught:
        routing.resolve(host, path)
    assert caught.value.status == 400
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("incoming", "forwarded"),
    [
        ({"X-Request-Id": "r1"}, {"x-request-id": "r1"}),
        ({"Knative-Foo": "a", "knative-bar": "b"}, {"knative-foo": "a", "knative-bar": "b"}),
        ({"X-B3-Custom": "c"}, {"x-b3-custom": "c"}),
        ({"Retry-After": "3"}, {"retry-after": "3"}),
        ({"X-B3-TraceId": "t", "X-B3-SpanId": "s", "X-B3-Sampled": "1"}, {}),
        ({"traceparent": "00-a-b-01", "tracestate": "x=y"}, {}),
        ({"Host": "h", "Authorization": "Bearer x", "Cookie": "c", "Content-Type": "t"}, {}),
        ({"ce-id": "1", "ce-type": "t"}, {}),
    ],
    ids=[
        "request-id",
        "knative-prefix",
        "b3-other",
        "retry-after",
        "b3-propagation-rewritten",
        "w3c-rewritten",
        "stripped",
        "ce-attributes-not-copied",
    ],
)
def test_passthrough(incoming: dict[str, str], forwarded: dict[str, str]) -> None:
    assert headers.passthrough(incoming.items()) == forwarded
    assert all(headers.passes(name) == (name.lower() in forwarded) for name in incoming)


def test_passthrough_keeps_the_first_of_repeated_headers() -> None:
    assert headers.passthrough([("X-Request-Id", "a"), ("x-request-id", "b")]) == {
        "x-request-id": "a"
    }
