"""The agent's exceptions.

AgentError
├── ContainerConfigError     a container can't be configured (missing Secret key, ...)
│   └── UnknownImage         no local command (process) or built image (runc) for the image
└── NetworkError             a network namespace, veth or rule could not be made

Apiserver errors are the shared `kevents.kubeapi.ApiError` tree.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ContainerConfigError(AgentError):
    """A container can't start as specified; `reason` is its waiting reason."""

    reason = "CreateContainerConfigError"


class UnknownImage(ContainerConfigError):
    """The image is not in images.yaml, so no local command stands in for it."""

    reason = "ErrImagePull"


class NetworkError(AgentError):
    """A host networking command failed."""
