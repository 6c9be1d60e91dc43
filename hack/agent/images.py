"""Image reference -> local command, from the checked-in `images.yaml`."""

from __future__ import annotations

import fnmatch
import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from hack.agent import errors

DEFAULT_MAP = pathlib.Path(__file__).with_name("images.yaml")


@dataclass(frozen=True)
class Image:
    """What one image stands for: its ENTRYPOINT, default CMD and extra env."""

    patterns: tuple[str, ...]
    entrypoint: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


def repository(reference: str) -> str:
    """`docker.io/library/python:3.11@sha256:...` -> `python` (no tag, digest, default registry)."""
    ref = reference.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref = ref[:colon]
    for prefix in (
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    return ref


@dataclass(frozen=True)
class ImageMap:
    """The ordered image table; the first matching entry wins."""

    images: tuple[Image, ...]

    @classmethod
    def load(cls, path: pathlib.Path = DEFAULT_MAP) -> ImageMap:
        raw: Any = yaml.safe_load(path.read_text())
        entries = []
        for item in raw["images"]:
            entries.append(
                Image(
                    patterns=tuple(str(p) for p in item["match"]),
                    entrypoint=tuple(str(a) for a in item.get("entrypoint", ())),
                    args=tuple(str(a) for a in item.get("args", ())),
                    env={str(k): str(v) for k, v in (item.get("env") or {}).items()},
                )
            )
        return cls(tuple(entries))

    def lookup(self, reference: str) -> Image:
        repo = repository(reference)
        for image in self.images:
            if any(fnmatch.fnmatchcase(repo, pattern) for pattern in image.patterns):
                return image
        raise errors.UnknownImage(
            f'image "{reference}" is not known to the kevents node agent: there is no '
            f"container runtime here, and {DEFAULT_MAP.name} maps no local command to it"
        )


def argv(image: Image, command: Sequence[str] | None, args: Sequence[str] | None) -> list[str]:
    """The process argv before $(VAR) expansion, with container-runtime semantics.

    `command` replaces the image's entrypoint (and drops its default args); `args` replaces
    the default args only.
    """
    if command:
        result = [*command, *(args or ())]
    elif args:
        result = [*image.entrypoint, *args]
    else:
        result = [*image.entrypoint, *image.args]
    if not result:
        raise errors.ContainerConfigError(
            "the image has no default command here; set the container's command"
        )
    return result
