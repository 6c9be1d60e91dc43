"""`POST /convert`: the apiextensions `ConversionReview` (v1) handler.

The apiserver calls it only for our five CRDs (their `spec.conversion`), and only when a
request's version differs from the stored one: every object is stored at v1, so v1 reads,
writes, watches, garbage collection and namespace deletion (all at the preferred version v1)
never call it. A webhook outage therefore fails v1alpha1 requests only, with the apiserver's
"conversion webhook ... failed" error, and nothing else in the cluster waits on it.

Pure work on the request: no apiserver call, bounded by the request body the apiserver sends.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from controller.conversion import kinds

logger = logging.getLogger(__name__)

PATH = "/convert"


def respond(request: dict[str, Any]) -> dict[str, Any]:
    """The `response` of a ConversionReview: every object converted, or a failure naming
    the first that cannot be."""
    uid = str(request.get("uid", ""))
    desired = str(request.get("desiredAPIVersion", ""))
    try:
        converted = [kinds.convert(obj, desired) for obj in request.get("objects") or []]
    except kinds.ConversionError as exc:
        return {"uid": uid, "result": {"status": "Failure", "message": str(exc)}}
    return {"uid": uid, "convertedObjects": converted, "result": {"status": "Success"}}


async def convert(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        review = body.get("request") if isinstance(body, dict) else None
    except ValueError:
        review = None
    if not isinstance(review, dict):
        return web.json_response({"message": "expected a ConversionReview"}, status=400)
    response = respond(review)
    if response["result"]["status"] != "Success":
        logger.warning("Conversion to %s refused: %s", review.get("desiredAPIVersion"),
                       response["result"]["message"])  # fmt: skip
    return web.json_response({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "response": response,
    })  # fmt: skip


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, convert)
