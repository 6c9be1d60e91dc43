"""PingSource data validation (knative/eventing `ping_validation.go`), pure.

`data` and `dataBase64` are exclusive; `dataBase64` must be standard base64; with
`contentType: application/json` the (decoded) data must be a JSON object; `contentType`
must be a media type. The CRD's CEL rules catch some of this at admission; the rest is
reported in status (Ready False) because no webhook runs.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

MEDIA_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;\s*[\w.+-]+=(\"[^\"]*\"|[\w.+-]+))*$")


class PayloadError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{message}: spec.{field}")


def validate(content_type: str, data: str, data_base64: str) -> None:
    if data and data_base64:
        raise PayloadError("data, spec.dataBase64", "expected exactly one, got both")
    if content_type and not MEDIA_TYPE.match(content_type):
        raise PayloadError("contentType", f"invalid media type {content_type!r}")
    raw: bytes | None = None
    field = "data"
    if data_base64:
        field = "dataBase64"
        try:
            raw = base64.b64decode(data_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PayloadError(field, f"invalid base64: {exc}") from exc
    elif data:
        raw = data.encode()
    if raw is not None and content_type.split(";")[0].strip().lower() == "application/json":
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(field, f"invalid JSON for application/json: {exc}") from exc
        if not isinstance(parsed, dict):
            raise PayloadError(field, "application/json data must be a JSON object")
