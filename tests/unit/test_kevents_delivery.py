"""DeliveryResult properties and Knative's dead-letter extensions."""

from __future__ import annotations

import base64

import pytest

from kevents import delivery, errors


def result(
    status: int | None, body: bytes = b"", error: str | None = None
) -> delivery.DeliveryResult:
    return delivery.DeliveryResult(status=status, duration=0.5, attempts=3, error=error, body=body)


@pytest.mark.parametrize(
    ("status", "ok", "status_class", "retryable"),
    [
        (200, True, "2xx", False),
        (202, True, "2xx", False),
        (302, False, "3xx", False),
        (400, False, "4xx", False),
        (429, False, "4xx", True),
        (503, False, "5xx", True),
        (None, False, "none", True),
    ],
    ids=lambda v: str(v),
)
def test_result_properties(
    status: int | None, ok: bool, status_class: str, retryable: bool
) -> None:
    r = result(status)
    assert (r.ok, r.status_class, r.retryable) == (ok, status_class, retryable)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(503, errors.RetryableDeliveryError), (None, errors.RetryableDeliveryError),
     (400, errors.TerminalDeliveryError)],
    ids=["503", "network", "400"],
)  # fmt: skip
def test_raise_for_failure_picks_the_type(
    status: int | None, error_type: type[errors.DeliveryError]
) -> None:
    r = result(status, error="ClientConnectorError: refused" if status is None else None)
    with pytest.raises(error_type) as caught:
        r.raise_for_failure("http://sink/")
    assert caught.value.result is r
    assert "after 3 attempt(s)" in str(caught.value)


def test_raise_for_failure_is_silent_on_success() -> None:
    result(202).raise_for_failure("http://sink/")


def test_dead_letter_extensions_like_knative() -> None:
    ext = delivery.dead_letter_extensions(result(500, b"boom"), "http://sub.default.svc/")
    assert ext == {
        "knativeerrordest": "http://sub.default.svc/",
        "knativeerrorcode": "500",
        "knativeerrordata": base64.standard_b64encode(b"boom").decode(),
    }


def test_dead_letter_extensions_without_response() -> None:
    """Knative records a transport failure as 500 with `dispatch error: <why>` as the body."""
    failed = result(None, error="no response within 1.0 s")
    ext = delivery.dead_letter_extensions(failed, "http://sub/")
    assert ext == {
        "knativeerrordest": "http://sub/",
        "knativeerrorcode": "500",
        "knativeerrordata": base64.standard_b64encode(
            b"dispatch error: no response within 1.0 s"
        ).decode(),
    }


def test_dead_letter_error_data_is_the_prefix_of_the_whole_bodys_base64() -> None:
    body = bytes(range(256)) * 20
    ext = delivery.dead_letter_extensions(result(500, body), "http://sub/")
    assert ext["knativeerrordata"] == base64.standard_b64encode(body).decode()[:1024]


def test_dead_letter_error_data_truncated_to_1024_chars() -> None:
    ext = delivery.dead_letter_extensions(result(503, b"x" * 5000), "http://sub/")
    assert len(ext["knativeerrordata"]) == 1024
