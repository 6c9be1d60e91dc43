"""Values of the Secrets a GitHubSource names (`accessToken` and `secretToken` secretKeyRefs).

The controller reads them with `get` only: it cannot list or watch Secrets (RBAC keeps that
away from it), so a Secret created or rotated later is noticed on the next reconcile (the
backoff of a failed one, or the periodic resync), not at once. Messages name the Secret and
the key, never a value.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import TypedDict

from kevents import kubeapi

SECRETS = kubeapi.Resource("", "v1", "secrets")


class SecretKeySelectorDict(TypedDict):
    name: str
    key: str


@dataclass(frozen=True, slots=True)
class Value:
    text: str = field(repr=False)
    resource_version: str
    """Of the Secret: changes whenever it is edited (rolls the adapter, which reads it as env)."""


class SecretError(Exception):
    """The value cannot be read; `message` is safe for a condition and a log line."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def selector(spec: kubeapi.Json, field_name: str) -> SecretKeySelectorDict:
    """`spec.<field>.secretKeyRef` (the CRD requires both name and key)."""
    ref = ((spec.get(field_name) or {}).get("secretKeyRef")) or {}
    return {"name": str(ref.get("name", "")), "key": str(ref.get("key", ""))}


def decode(secret: kubeapi.Json, ref: SecretKeySelectorDict) -> str:
    data = secret.get("data") or {}
    where = f'Secret "{ref["name"]}"'
    if ref["key"] not in data:
        raise SecretError(f'key "{ref["key"]}" not found in {where}')
    try:
        return base64.b64decode(data[ref["key"]], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise SecretError(f'key "{ref["key"]}" of {where} is not UTF-8 text') from None


async def read(api: kubeapi.KubeApi, namespace: str, ref: SecretKeySelectorDict) -> Value:
    try:
        secret = await api.get(SECRETS, namespace, ref["name"])
    except kubeapi.NotFound as exc:
        raise SecretError(f'Secret "{ref["name"]}" not found in namespace "{namespace}"') from exc
    except kubeapi.ApiError as exc:
        raise SecretError(f'Secret "{ref["name"]}" cannot be read: {exc.message}') from exc
    return Value(decode(secret, ref), str(secret["metadata"].get("resourceVersion", "")))
