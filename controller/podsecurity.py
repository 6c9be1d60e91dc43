"""The restricted securityContext every adapter Deployment the controller makes carries
(Pod Security Standards "restricted": non-root, no privilege escalation, no capabilities,
read-only root filesystem, RuntimeDefault seccomp). Fresh dicts each call: callers embed them
in objects they may change."""

from __future__ import annotations

from typing import Any


def pod() -> dict[str, Any]:
    """Pod-level securityContext."""
    return {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def container() -> dict[str, Any]:
    """Container-level securityContext."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
