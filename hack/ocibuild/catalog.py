"""Which images we build: kevents' components (from images/*/Containerfile), Knative's sample
programs, and the generic images that tests and tutorials name.

Every reference is written fully qualified (`docker.io/library/busybox:latest`), as a
container runtime normalises it; the node agent normalises what pods name the same way.
"""

from __future__ import annotations

import json
import pathlib
import re
from dataclasses import dataclass, field

NONROOT = "65532:65532"
"""distroless' `nonroot` user, as Knative's ko-built images and our Deployments run."""

EVENTING = "v0.49.2"
"""knative.dev/eventing module whose cmd/event_display and cmd/heartbeats we build."""

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KO_ENV = {
    # What ko puts in the config of every image it builds.
    "PATH": f"{PATH}:/ko-app",
    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    "KO_DATA_PATH": "/var/run/ko",
}


@dataclass(frozen=True)
class Image:
    """One image: the stage it is made from and its config."""

    name: str
    """Short name: the archive is `archives/<name>.tar`."""
    stage: str
    """`kevents` (base + deps + code), `python`, `debian` (base), `busybox`, or `go:<cmd>`."""
    refs: tuple[str, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def config(self) -> str:
        """The config as canonical JSON (part of the build's cache key)."""
        return json.dumps(
            {
                "stage": self.stage,
                "refs": self.refs,
                "entrypoint": self.entrypoint,
                "cmd": self.cmd,
                "user": self.user,
                "env": self.env,
                "labels": self.labels,
            },
            sort_keys=True,
        )


_ENTRYPOINT = re.compile(r"^ENTRYPOINT\s+(\[.*\])\s*$", re.M)
_TITLE = re.compile(r"org\.opencontainers\.image\.title=\"?([^\s\"\\]+)")


def component(containerfile: pathlib.Path) -> tuple[str, tuple[str, ...]]:
    """(title, entrypoint) of one images/<name>/Containerfile."""
    text = containerfile.read_text()
    match = _ENTRYPOINT.search(text)
    if match is None:
        raise ValueError(f"{containerfile}: no ENTRYPOINT [...] line")
    entrypoint = tuple(str(a) for a in json.loads(match.group(1)))
    title = _TITLE.search(text)
    return (title.group(1) if title else containerfile.parent.name), entrypoint


def images(repo: pathlib.Path, version: str, labels: dict[str, str]) -> list[Image]:
    result: list[Image] = []
    for cf in sorted(repo.glob("images/*/Containerfile")):
        name = cf.parent.name
        title, entrypoint = component(cf)
        result.append(
            Image(
                name=name,
                stage="kevents",
                refs=(f"docker.io/kevents/{name}:{version}", f"docker.io/kevents/{name}:latest"),
                entrypoint=entrypoint,
                user=NONROOT,
                env={"PATH": PATH, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
                labels={**labels, "org.opencontainers.image.title": title},
            )
        )
    knative = "gcr.io/knative-releases/knative.dev/eventing/cmd"
    sources = "github.com/knative/eventing-sources/cmd"
    go_labels = {
        "org.opencontainers.image.source": "https://github.com/knative/eventing",
        "org.opencontainers.image.version": EVENTING,
        "org.opencontainers.image.revision": EVENTING,
    }
    result.append(
        Image(
            name="knative-event-display",
            stage="go:event_display",
            refs=(
                f"{knative}/event_display:latest",
                f"{knative}/event_display:{EVENTING}",
                "gcr.io/knative-nightly/knative.dev/eventing/cmd/event_display:latest",
                "gcr.io/knative-releases/knative.dev/eventing-contrib/cmd/event_display:latest",
                # The 2018-2019 docs' images (knative/eventing-sources): same contract.
                f"gcr.io/knative-releases/{sources}/event_display:latest",
                f"gcr.io/knative-releases/{sources}/message_dumper:latest",
                f"{sources}/event_display:latest",
                f"{sources}/message_dumper:latest",
            ),
            entrypoint=("/ko-app/event_display",),
            user=NONROOT,
            env=KO_ENV,
            labels={**go_labels, "org.opencontainers.image.title": "event_display"},
        )
    )
    result.append(
        Image(
            name="knative-heartbeats",
            stage="go:heartbeats",
            refs=(
                f"{knative}/heartbeats:latest",
                f"{knative}/heartbeats:{EVENTING}",
                "gcr.io/knative-nightly/knative.dev/eventing/cmd/heartbeats:latest",
                "gcr.io/knative-releases/knative.dev/eventing-contrib/cmd/heartbeats:latest",
            ),
            entrypoint=("/ko-app/heartbeats",),
            user=NONROOT,
            env=KO_ENV,
            labels={**go_labels, "org.opencontainers.image.title": "heartbeats"},
        )
    )
    # The 2018 ContainerSource docs' heartbeats ran without POD_NAME / POD_NAMESPACE, which
    # today's program requires: the same program, with defaults for both (the pod's env wins).
    result.append(
        Image(
            name="knative-heartbeats-2018",
            stage="go:heartbeats",
            refs=(
                f"gcr.io/knative-releases/{sources}/heartbeats:latest",
                f"{sources}/heartbeats:latest",
            ),
            entrypoint=("/ko-app/heartbeats",),
            user=NONROOT,
            env={**KO_ENV, "POD_NAME": "heartbeats", "POD_NAMESPACE": "default"},
            labels={**go_labels, "org.opencontainers.image.title": "heartbeats"},
        )
    )
    debian_labels = {"org.opencontainers.image.version": "12 (bookworm)"}
    result.append(
        Image(
            name="python",
            stage="python",
            refs=tuple(
                f"docker.io/library/python:{t}"
                for t in ("3.11", "3.11-slim", "3.11-bookworm", "3.11-slim-bookworm")
            ),
            cmd=("python3",),
            env={"PATH": PATH, "PYTHONUNBUFFERED": "1"},
            labels={**debian_labels, "org.opencontainers.image.title": "python3.11 (Debian)"},
        )
    )
    result.append(
        Image(
            name="debian",
            stage="debian",
            refs=tuple(
                f"docker.io/library/debian:{t}"
                for t in ("bookworm", "bookworm-slim", "12", "12-slim", "latest")
            ),
            cmd=("bash",),
            env={"PATH": PATH},
            labels={**debian_labels, "org.opencontainers.image.title": "debian"},
        )
    )
    result.append(
        Image(
            name="busybox",
            stage="busybox",
            refs=("docker.io/library/busybox:latest", "docker.io/library/busybox:1.35"),
            cmd=("sh",),
            env={"PATH": PATH},
            labels={"org.opencontainers.image.title": "busybox (Debian busybox-static)"},
        )
    )
    return result
