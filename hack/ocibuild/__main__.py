"""`python -m hack.ocibuild` (`hack/build-images`): build every image; print the output folder.

stdout: the folder holding `layout/` (one OCI image layout with every image), `archives/`
(one oci-archive per image) and `images.json`. stderr: the build's progress (hack/progress:
seven numbered steps, a moving line for mmdebstrap, pip, Go and the assembly, a cache hit
noted "cached", each step's time at the end), then each image's size.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import time
import tomllib

from hack.agent import imagestore
from hack.ocibuild import catalog, layers, layout, stages
from hack.progress import render

log = logging.getLogger("hack.ocibuild")
REPO = pathlib.Path(__file__).resolve().parents[2]
KEEP = 3
"""Finished builds kept per stage kind (older ones are removed at the end of a build)."""
STEPS = 7
"""The numbered steps of `build` (the progress counter's total)."""


def git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return out.stdout.strip()


def labels(version: str) -> dict[str, str]:
    revision = git("rev-parse", "HEAD") or "unknown"
    if git("status", "--porcelain", "--", *stages.CODE, "pyproject.toml"):
        revision += "-dirty"
    source = os.environ.get("KEVENTS_IMAGE_SOURCE") or git("config", "remote.origin.url")
    return {
        "org.opencontainers.image.source": source or "https://github.com/kevents/kevents",
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.vendor": "kevents",
    }


def created() -> str:
    """HEAD's commit time: the same tree at the same commit gives the same digests."""
    return git("log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ") or (
        "2024-01-01T00:00:00Z"
    )


def in_use(root: pathlib.Path) -> set[pathlib.Path]:
    """The builds that a checkout's node agent may be running containers from (a pointer
    whose checkout is gone, a CI clone's, is dropped)."""
    used = set()
    for pointer in (root / "checkouts").glob("*"):
        lines = pointer.read_text().splitlines()
        if len(lines) < 2 or not pathlib.Path(lines[1]).exists():
            pointer.unlink(missing_ok=True)
            continue
        used.add(pathlib.Path(lines[0]))
    return used


def prune(root: pathlib.Path, prefix: str, keep: int, current: pathlib.Path) -> None:
    used = in_use(root)
    done = sorted(
        (
            p
            for p in root.glob(f"{prefix}-*")
            if (p / ".done").exists() and p != current and p not in used
        ),
        key=lambda p: (p / ".done").stat().st_mtime,
        reverse=True,
    )
    for old in done[keep - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def human(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def report(out: pathlib.Path) -> None:
    data = json.loads((out / "images.json").read_text())
    rows = [("image", "reference", "layers", "compressed", "unpacked", "archive")]
    for item in data["images"]:
        rows.append(
            (
                item["name"],
                item["refs"][0],
                str(item["layers"]),
                human(item["compressed"]),
                human(item["unpacked"]),
                human(item["archive_bytes"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)), file=sys.stderr)
    print(
        f"all images together: {human(data['unique_compressed'])} of distinct compressed blobs",
        file=sys.stderr,
    )


def build(version: str, steps: render.Steps) -> pathlib.Path:
    root = stages.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    pyproject = REPO / "pyproject.toml"
    images = catalog.images(REPO, version, labels(version))
    with steps.step(f"Debian {stages.SUITE} base (mmdebstrap; a few minutes fresh)") as step:
        base = stages.base(root, step)
    with steps.step("Python runtime dependencies (pip, wheels only)") as step:
        deps = stages.deps(root, pyproject, step)
    title = f"Knative's event_display and heartbeats (go build, eventing {catalog.EVENTING})"
    with steps.step(title) as step:
        go = stages.go_samples(root, step)
        go_layers = {cmd: stages.go_layer(root, go, cmd) for cmd in ("event_display", "heartbeats")}
    with steps.step("busybox (Debian's busybox-static)") as step:
        busybox = stages.busybox(root, step)
    stage_tars = [base, deps, busybox, *go_layers.values()]
    fkey = stages.key("foundation/2", *(str(p) for p in stage_tars))

    def foundation_build(tmp: pathlib.Path) -> None:
        log.debug("Assembling the shared layers with umoci.")
        lay = tmp / "layout"
        layout.init(lay)
        layout.new_image(
            lay, "debian", base,
            f"mmdebstrap --variant=minbase {stages.SUITE} (+ {', '.join(stages.PACKAGES)})",
        )  # fmt: skip
        step.advance(1, 5, "debian", "layers")
        layout.add_layer(
            lay, "debian", deps, "pip install --only-binary=:all: (pyproject dependencies)",
            new_tag="runtime",
        )  # fmt: skip
        step.advance(2, 5, "runtime", "layers")
        layout.new_image(lay, "busybox", busybox, "Debian busybox-static, applet links")
        step.advance(3, 5, "busybox", "layers")
        for done, (cmd, tar) in enumerate(go_layers.items(), start=4):
            layout.new_image(
                lay, f"go-{cmd}", tar,
                f"CGO_ENABLED=0 go build knative.dev/eventing/cmd/{cmd}@{catalog.EVENTING}",
            )  # fmt: skip
            step.advance(done, 5, f"go-{cmd}", "layers")

    with steps.step("the shared layers (umoci)") as step:
        foundation = stages.cached(root / f"foundation-{fkey}", foundation_build, step) / "layout"
    with steps.step("the project's code layer") as step:
        code = stages.code(root, REPO, step)
    configs = [i.config() for i in images]
    final_key = stages.key("final/1", fkey, layers.sha256(code), created(), *configs)
    final = root / f"final-{final_key}"

    def final_build(tmp: pathlib.Path) -> None:
        lay = tmp / "layout"
        layout.copy(foundation, lay)
        layout.add_layer(
            lay,
            "runtime",
            code,
            "COPY kevents sources dispatcher controller display",
            new_tag="kevents",
        )
        stage_tags = {
            "kevents": "kevents",
            "python": "debian",
            "debian": "debian",
            "busybox": "busybox",
            "go:event_display": "go-event_display",
            "go:heartbeats": "go-heartbeats",
        }
        when = created()
        for image in images:
            layout.configure(lay, stage_tags[image.stage], image, when)
        digests = layout.name_references(lay, images)
        unpacked = {}
        for tar in [base, deps, busybox, code, *go_layers.values()]:
            unpacked[f"sha256:{layers.sha256(tar)}"] = tar.stat().st_size
        (tmp / "archives").mkdir()
        items = []
        blobs: dict[str, int] = {}
        for done, image in enumerate(images, start=1):
            digest = digests[image.name]
            archive = tmp / "archives" / f"{image.name}.tar"
            layout.archive(lay, image.refs[0], archive)
            step.advance(done, len(images), image.name, "archives")
            sz = layout.size(lay, digest, unpacked)
            m = layout.manifest(lay, digest)
            for d in [*m["layers"], m["config"]]:
                blobs[d["digest"]] = int(d["size"])
            items.append(
                {
                    "name": image.name,
                    "refs": list(image.refs),
                    "digest": digest,
                    "archive": f"archives/{image.name}.tar",
                    "layers": sz.layers,
                    "compressed": sz.compressed,
                    "unpacked": sz.unpacked,
                    "archive_bytes": archive.stat().st_size,
                    "user": image.user or "0",
                    "entrypoint": list(image.entrypoint),
                }
            )
        summary = {"images": items, "unique_compressed": sum(blobs.values())}
        (tmp / "images.json").write_text(json.dumps(summary, indent=1) + "\n")

    with steps.step(f"{len(images)} images and their archives (umoci config, skopeo)") as step:
        stages.cached(final, final_build, step)
    (final / ".done").touch()  # the newest use, for pruning
    for prefix in ("final", "code", "foundation", "deps", "base", "go", "busybox"):
        current = {"final": final, "code": code.parent, "foundation": foundation.parent}.get(
            prefix, final
        )
        keep = KEEP if prefix in ("final", "code") else 2
        prune(root, prefix, keep, current)
    return final


def main() -> None:
    p = argparse.ArgumentParser(prog="hack/build-images", description=__doc__)
    p.add_argument("--version", help="image tag (default: pyproject's project.version)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="build-images: %(asctime)s %(message)s",
        stream=sys.stderr,
    )
    version = (
        args.version or tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    )
    root = stages.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    steps = render.Steps(total=STEPS, renderer=render.choose(sys.stderr))
    try:
        with (root / ".lock").open("w") as lock:
            # Builds on one machine (CI beside a developer) take turns on the shared cache.
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("Waiting for another hack/build-images to finish with %s.", root)
                fcntl.flock(lock, fcntl.LOCK_EX)
            out = build(version, steps)
            # The node agent's runc runtime finds this checkout's images (hack/agent/imagestore).
            pointer = root / "checkouts" / imagestore.checkout_key(REPO)
            pointer.parent.mkdir(exist_ok=True)
            pointer.write_text(f"{out}\n{REPO}\n")
        report(out)
    finally:
        steps.finish()  # each step's time at the end, also when one failed
    print(f"built in {time.monotonic() - start:.1f}s (lock wait included): {out}", file=sys.stderr)
    print(out)


if __name__ == "__main__":
    main()
