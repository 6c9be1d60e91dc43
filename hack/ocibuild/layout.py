"""One OCI image layout holding every image, assembled by umoci; archives copied by skopeo.

umoci names images by tags of its own (`base`, `runtime`, `controller`...); once all are
assembled, `index.json` is rewritten to name each manifest by its full references
(`docker.io/kevents/controller:0.1.0`...), which is how skopeo, containerd's importer and the
node agent find them.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hack.ocibuild import catalog, stages

REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "2024-01-01T00:00:00Z"
"""The layers' history time (their files' mtime): a stage's blobs never depend on the clock."""


def umoci(*args: str) -> None:
    stages.run(["umoci", *args], stdout=subprocess.DEVNULL)


def init(layout: pathlib.Path) -> None:
    umoci("init", "--layout", str(layout))


def new_image(layout: pathlib.Path, tag: str, tar: pathlib.Path, created_by: str) -> None:
    """A tag whose image is the one layer `tar`, with an empty config."""
    umoci("new", "--image", f"{layout}:{tag}")
    add_layer(layout, tag, tar, created_by)


def add_layer(
    layout: pathlib.Path, tag: str, tar: pathlib.Path, created_by: str, new_tag: str = ""
) -> None:
    """Add `tar` (gzip-compressed by umoci) on top of `tag`'s image, as `new_tag` if given;
    the history entry says what made the layer (`skopeo inspect --config`, `docker history`)."""
    extra = ["--tag", new_tag] if new_tag else []
    umoci(
        "raw", "add-layer", "--image", f"{layout}:{tag}", *extra,
        "--history.created", CREATED, "--history.author", "kevents hack/build-images",
        "--history.created_by", created_by, str(tar),
    )  # fmt: skip


def copy(src: pathlib.Path, dst: pathlib.Path) -> None:
    """A new layout sharing `src`'s blobs by hard links (blobs are immutable by digest)."""
    dst.mkdir(parents=True)
    shutil.copytree(src / "blobs", dst / "blobs", copy_function=os.link)
    for name in ("index.json", "oci-layout"):
        shutil.copyfile(src / name, dst / name)


def configure(layout: pathlib.Path, stage_tag: str, image: catalog.Image, created: str) -> None:
    args = [
        "config", "--no-history", "--image", f"{layout}:{stage_tag}", "--tag", image.name,
        "--created", created, "--author", "kevents hack/build-images",
        "--config.workingdir", "/", "--os", "linux", "--architecture", "amd64",
    ]  # fmt: skip
    if image.user:
        args += ["--config.user", image.user]
    for arg in image.entrypoint:
        args += ["--config.entrypoint", arg]
    for arg in image.cmd:
        args += ["--config.cmd", arg]
    for k, v in sorted(image.env.items()):
        args += ["--config.env", f"{k}={v}"]
    for k, v in sorted(image.labels.items()):
        args += ["--config.label", f"{k}={v}"]
    umoci(*args)


def _index(layout: pathlib.Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((layout / "index.json").read_text())
    return data


def name_references(layout: pathlib.Path, images: Sequence[catalog.Image]) -> dict[str, str]:
    """Rewrite index.json to hold one entry per reference; returns name -> manifest digest."""
    index = _index(layout)
    by_tag = {m["annotations"][REF_NAME]: m for m in index["manifests"]}
    manifests = []
    digests: dict[str, str] = {}
    for image in images:
        desc = by_tag[image.name]
        digests[image.name] = desc["digest"]
        for ref in image.refs:
            manifests.append({**desc, "annotations": {REF_NAME: ref}})
    index["manifests"] = manifests
    tmp = layout / "index.json.tmp"
    tmp.write_text(json.dumps(index, indent=1))
    tmp.replace(layout / "index.json")
    # The stages' own manifests and configs (a few hundred bytes each) stay as unreferenced
    # blobs: `umoci gc` would take half a minute to drop them, and no archive copies them.
    return digests


def blob(layout: pathlib.Path, digest: str) -> pathlib.Path:
    algo, hexa = digest.split(":", 1)
    return layout / "blobs" / algo / hexa


def manifest(layout: pathlib.Path, digest: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(blob(layout, digest).read_text())
    return data


@dataclass(frozen=True)
class Size:
    compressed: int
    """Layers + config + manifest as stored in a registry and pulled."""
    unpacked: int
    """The root filesystem's tar bytes."""
    layers: int


def size(layout: pathlib.Path, digest: str, unpacked: Mapping[str, int]) -> Size:
    m = manifest(layout, digest)
    desc = m["layers"]
    config = json.loads(blob(layout, m["config"]["digest"]).read_text())
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    compressed = sum(int(d["size"]) for d in desc) + int(m["config"]["size"])
    compressed += blob(layout, digest).stat().st_size
    return Size(compressed, sum(unpacked.get(d, 0) for d in diff_ids), len(desc))


def archive(layout: pathlib.Path, ref: str, out: pathlib.Path) -> None:
    """One image as an `oci-archive` named by `ref` (what `kind load image-archive` reads)."""
    tmp = out.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    stages.run(
        ["skopeo", "copy", "--quiet", f"oci:{layout}:{ref}", f"oci-archive:{tmp}:{ref}"],
        stdout=subprocess.DEVNULL,
    )
    tmp.replace(out)
