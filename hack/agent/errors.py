"""The agent's exceptions.

AgentError
├── ApiError                 the apiserver answered with an error status
├── ContainerConfigError     a container can't be configured (missing Secret key, ...)
│   └── UnknownImage         no local command is mapped to the container's image
└── NetworkError             a network namespace, veth or rule could not be made
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ApiError(AgentError):
    """The apiserver answered `status` (404, 409, ...) with a Status `reason` and message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class ContainerConfigError(AgentError):
    """A container can't start as specified; `reason` is its waiting reason."""

    reason = "CreateContainerConfigError"


class UnknownImage(ContainerConfigError):
    """The image is not in images.yaml, so no local command stands in for it."""

    reason = "ErrImagePull"


class NetworkError(AgentError):
    """A host networking command failed."""
