"""Images for the runc runtime: references resolved in the OCI image layout that
`hack/build-images` wrote, root filesystems unpacked once per layer chain.

    pod's image  ──normalise──>  docker.io/library/busybox:latest
                 ──index.json──> manifest digest ──> config (user, env, entrypoint, cmd, workdir)
                                                 └─> layers ──> <state>/rootfs/<chain id>/rootfs

The layout is `--images DIR` (or `KEVENTS_AGENT_IMAGES`), else the one build-images last made
for this checkout (it records it in `<cache>/images/checkouts/<key of the checkout path>`);
a rebuild while the agent runs is picked up by the next container start, as a moved tag is
by the next pull. A root filesystem depends only on its layers (containerd's snapshot
ChainID), so every kevents component, whose images differ in config only, shares one.
A reference none of the layout's names gives is `ErrImagePull`, as before. A reference
pinned by a digest we did not build (the old tutorials' `event_display@sha256:...`) is served
by the same repository's `latest`: the local node stands in for a pull it cannot make.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import pathlib
import shutil
from dataclasses import dataclass
from typing import Any

from hack import cache
from hack.agent import errors

log = logging.getLogger(__name__)

REF_NAME = "org.opencontainers.image.ref.name"
KEEP = 4
"""Unused root filesystems kept (most recently used first) for the next containers."""


def cache_root() -> pathlib.Path:
    return cache.root() / "images"


def checkout_key(checkout: pathlib.Path) -> str:
    """The name of the file where build-images records its output for `checkout`."""
    return hashlib.sha256(str(checkout.resolve()).encode()).hexdigest()[:16]


def default_layout(checkout: pathlib.Path) -> pathlib.Path | None:
    pointer = cache_root() / "checkouts" / checkout_key(checkout)
    try:
        return pathlib.Path(pointer.read_text().splitlines()[0]) / "layout"
    except (OSError, IndexError):
        return None


def normalise(reference: str) -> tuple[str, str, str]:
    """(repository, tag, digest) as a container runtime reads a reference:
    `busybox` -> (`docker.io/library/busybox`, `latest`, ``)."""
    name, _, digest = reference.partition("@")
    tag = ""
    if name.rfind(":") > name.rfind("/"):
        name, tag = name[: name.rfind(":")], name[name.rfind(":") + 1 :]
    if name.startswith("index.docker.io/"):
        name = "docker.io/" + name.removeprefix("index.docker.io/")
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif first == "docker.io" and "/" not in rest:
        name = f"docker.io/library/{rest}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if not tag and not digest:
        tag = "latest"
    return name, tag, digest


def chain_id(diff_ids: list[str]) -> str:
    """The OCI ChainID of a layer stack: the identity of the root filesystem it makes."""
    chain = diff_ids[0]
    for diff in diff_ids[1:]:
        chain = "sha256:" + hashlib.sha256(f"{chain} {diff}".encode()).hexdigest()
    return chain


@dataclass(frozen=True)
class Resolved:
    """An image as found in the layout."""

    reference: str
    repository: str
    digest: str
    """The manifest's digest: the container's `imageID` is `<repository>@<digest>`."""
    config: dict[str, Any]
    """The image config's `config` (User, Env, Entrypoint, Cmd, WorkingDir, Labels)."""
    layers: tuple[pathlib.Path, ...]
    chain: str

    @property
    def image_id(self) -> str:
        return f"{self.repository}@{self.digest}"


class ImageStore:
    """Resolves references in one layout (re-read when it changes) and unpacks root
    filesystems under `rootfs_dir`."""

    def __init__(
        self, layout: pathlib.Path | None, rootfs_dir: pathlib.Path, checkout: pathlib.Path
    ):
        self.fixed = layout
        self.checkout = checkout
        self.rootfs_dir = rootfs_dir
        self._index: dict[str, str] = {}
        self._loaded: tuple[pathlib.Path, float] | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self.busy: collections.Counter[str] = collections.Counter()
        """Root filesystems that containers run from now: never pruned."""

    def layout(self) -> pathlib.Path:
        layout = self.fixed or default_layout(self.checkout)
        if layout is None or not (layout / "index.json").exists():
            raise errors.UnknownImage(
                "no images have been built for the runc runtime: run hack/build-images "
                "(or give the agent --images DIR)"
            )
        return layout

    def _refs(self, layout: pathlib.Path) -> dict[str, str]:
        mtime = (layout / "index.json").stat().st_mtime
        if self._loaded != (layout, mtime):
            index = json.loads((layout / "index.json").read_text())
            self._index = {
                m["annotations"][REF_NAME]: m["digest"]
                for m in index.get("manifests", [])
                if REF_NAME in (m.get("annotations") or {})
            }
            self._loaded = (layout, mtime)
        return self._index

    def resolve(self, reference: str) -> Resolved:
        layout = self.layout()
        refs = self._refs(layout)
        repo, tag, digest = normalise(reference)
        found = refs.get(f"{repo}:{tag}") if tag else None
        if found is None and digest:
            mine = [d for r, d in refs.items() if d == digest and r.rsplit(":", 1)[0] == repo]
            found = mine[0] if mine else refs.get(f"{repo}:latest")
        if found is None:
            raise errors.UnknownImage(
                f'image "{reference}" is not known to the kevents node agent: it is not among '
                f"the images built by hack/build-images ({layout.parent.name})"
            )

        def blob(digest: str) -> pathlib.Path:
            algo, hexa = digest.split(":", 1)
            return layout / "blobs" / algo / hexa

        manifest = json.loads(blob(found).read_text())
        config = json.loads(blob(manifest["config"]["digest"]).read_text())
        diff_ids = list(config.get("rootfs", {}).get("diff_ids") or [])
        return Resolved(
            reference=reference,
            repository=repo,
            digest=found,
            config=dict(config.get("config") or {}),
            layers=tuple(blob(layer["digest"]) for layer in manifest["layers"]),
            chain=chain_id(diff_ids) if diff_ids else "empty",
        )

    async def acquire(self, image: Resolved) -> pathlib.Path:
        """The image's root filesystem, unpacked on first use (never written to afterwards:
        containers see it read-only or through an overlay), kept until `release`d."""
        name = image.chain.replace("sha256:", "")
        self.busy[name] += 1
        try:
            return await self._rootfs(image, name)
        except BaseException:
            self.release(image)
            raise

    def release(self, image: Resolved) -> None:
        name = image.chain.replace("sha256:", "")
        self.busy[name] -= 1
        if self.busy[name] <= 0:
            del self.busy[name]

    def prune(self) -> None:
        """Remove root filesystems no container uses, but the KEEP most recently used (every
        code change makes a new kevents chain of ~250 MB)."""
        chains = [d for d in self.rootfs_dir.glob("*") if (d / ".done").exists()]
        chains.sort(key=lambda d: (d / ".done").stat().st_mtime, reverse=True)
        for old in chains[KEEP:]:
            if old.name not in self.busy:
                log.info("Removing the unused root filesystem %s.", old.name)
                shutil.rmtree(old, ignore_errors=True)

    async def _rootfs(self, image: Resolved, name: str) -> pathlib.Path:
        done = self.rootfs_dir / name
        if (done / ".done").exists():
            (done / ".done").touch()
            return done / "rootfs"
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if (done / ".done").exists():
                return done / "rootfs"
            tmp = self.rootfs_dir / f".{name}.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / "rootfs").mkdir(parents=True)
            log.info("Unpacking image %s (%d layers).", image.reference, len(image.layers))
            for layer in image.layers:
                await _untar(layer, tmp / "rootfs")
            (tmp / ".done").touch()
            shutil.rmtree(done, ignore_errors=True)
            tmp.rename(done)
        self.prune()
        return done / "rootfs"


async def _untar(layer: pathlib.Path, into: pathlib.Path) -> None:
    """Apply one gzip layer; `.wh.NAME` whiteouts delete NAME from the layers below."""
    proc = await asyncio.create_subprocess_exec(
        "tar", "--numeric-owner", "--same-permissions", "-xzf", str(layer), "-C", str(into),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise errors.ContainerConfigError(f"unpacking layer {layer.name}: {err.decode().strip()}")
    # A blocking walk, once per image and layer (the layers we build have no whiteouts).
    for marker in list(into.rglob(".wh.*")):  # noqa: ASYNC240
        target = marker.with_name(marker.name[len(".wh.") :])
        if marker.name == ".wh..wh..opq":
            marker.unlink()
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        marker.unlink()
