"""The layers' contents, each built once and cached by a key of its inputs.

    <cache>/images/base-<key>/layer.tar     mmdebstrap: Debian bookworm minbase + python3
    <cache>/images/deps-<key>/layer.tar     pip: pyproject's runtime deps, wheels only, compiled
    <cache>/images/code-<key>/layer.tar     the project's packages, compiled
    <cache>/images/go-<key>/<cmd>           knative.dev/eventing's sample programs (static)
    <cache>/images/busybox-<key>/layer.tar  Debian's busybox-static with its applet links

A stage directory holds a `.done` file once complete; an interrupted build leaves none and is
done again. Each stage runs as a step of hack/progress (`__main__`): the long commands move
its line (mmdebstrap's phases, pip's packages, Go's module downloads and packages compiled)
and a cache hit is noted on the step.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Sequence

from hack import cache
from hack.ocibuild import catalog, layers
from hack.progress import gobuild, loglines, render

log = logging.getLogger(__name__)

SUITE = "bookworm"
"""Debian 12: its python3.11 (3.11.2) is the 3.11 the project targets (requires-python
>=3.11, mypy python_version 3.11); `.pyc` files compiled by any 3.11 load in it."""

PACKAGES = ("python3", "python-is-python3", "ca-certificates")
"""On top of minbase. No tzdata: zoneinfo uses the `tzdata` wheel that croniter brings."""

SITE = "usr/local/lib/python3.11/dist-packages"
"""Where Debian's python3.11 looks for locally installed packages."""

CODE = ("kevents", "sources", "dispatcher", "controller", "display")
"""The product's packages (hack/, tests/ and bench/ are not shipped)."""

_UID, _GID = catalog.NONROOT.split(":")
BASE_HOOK = f"""
set -e
root="$1"
echo 'nonroot:x:{_UID}:{_GID}:nonroot:/home/nonroot:/usr/sbin/nologin' >> "$root/etc/passwd"
echo 'nonroot:x:{_GID}:' >> "$root/etc/group"
echo 'nonroot:!:19723::::::' >> "$root/etc/shadow"
mkdir -p "$root/home/nonroot"
chown {catalog.NONROOT} "$root/home/nonroot"
chmod 700 "$root/home/nonroot"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/ldconfig/aux-cache
find "$root/var/log" -type f -delete
: > "$root/etc/machine-id"
"""


def cache_root() -> pathlib.Path:
    return cache.root() / "images"


def key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def run(argv: Sequence[str], **kwargs: object) -> None:
    log.debug("running %s", " ".join(argv))
    subprocess.run(list(argv), check=True, **kwargs)  # type: ignore[call-overload]


def cached(
    dir_: pathlib.Path, build: Callable[[pathlib.Path], None], step: render.Step | None = None
) -> pathlib.Path:
    """`dir_` once `build(tmp)` has filled a temporary sibling and it was renamed into place;
    when it was there already, `step` is noted "cached"."""
    if (dir_ / ".done").exists():
        if step is not None:
            step.note = "cached"
        return dir_
    dir_.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{dir_.name}.", dir=dir_.parent))
    try:
        build(tmp)
        (tmp / ".done").touch()
        if dir_.exists():
            shutil.rmtree(dir_)
        tmp.rename(dir_)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dir_


def mmdebstrap_phase(line: str) -> str | None:
    """mmdebstrap's phases (`I: downloading packages with apt...`)."""
    return line[3:].strip() if line.startswith("I: ") else None


def pip_package(line: str) -> str | None:
    """pip's resolution, a line per package (`Collecting aiohttp>=3.9`)."""
    return line.split(maxsplit=1)[1] if line.startswith("Collecting ") else None


def go_download(line: str) -> str | None:
    """`go get`'s module downloads (`go: downloading knative.dev/eventing v0.49.2`)."""
    prefix = "go: downloading "
    return line[len(prefix) :].strip() if line.startswith(prefix) else None


def mirrors() -> tuple[str, str]:
    """(Debian mirror, security mirror): what this machine's apt uses, or the env's."""
    mirror = os.environ.get("KEVENTS_DEBIAN_MIRROR", "")
    security = os.environ.get("KEVENTS_DEBIAN_SECURITY_MIRROR", "")
    found: list[str] = []
    apt = pathlib.Path("/etc/apt")
    for path in [apt / "sources.list", *sorted(apt.glob("sources.list.d/*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        found += re.findall(r"(?:^URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.M)
    debian = [u.rstrip("/") for u in found if re.search(r"/debian$", u.rstrip("/"))]
    sec = [u.rstrip("/") for u in found if re.search(r"/debian-security$", u.rstrip("/"))]
    return (
        mirror or (debian[0] if debian else "http://deb.debian.org/debian"),
        security or (sec[0] if sec else "http://deb.debian.org/debian-security"),
    )


def base(root: pathlib.Path, step: render.Step) -> pathlib.Path:
    """The Debian root filesystem as a layer tar (mmdebstrap, minbase, merged /usr)."""
    mirror, security = mirrors()
    sources = [
        f"deb {mirror} {SUITE} main",
        f"deb {mirror} {SUITE}-updates main",
        f"deb {security} {SUITE}-security main",
    ]
    k = key("base/1", SUITE, *sources, *PACKAGES, BASE_HOOK)

    def build(tmp: pathlib.Path) -> None:
        log.debug("Building the Debian %s base with mmdebstrap.", SUITE)
        # From a file: mmdebstrap first tries a hook as a path, and warns about a newline.
        hook = tmp / "customize.sh"
        hook.write_text(BASE_HOOK)
        exclude = ["doc/*", "man/*", "info/*", "locale/*", "lintian/*", "linda/*"]
        dpkgopts = [f"--dpkgopt=path-exclude=/usr/share/{p}" for p in exclude]
        dpkgopts.append("--dpkgopt=path-include=/usr/share/doc/*/copyright")
        argv = [
            "mmdebstrap",
            "--variant=minbase",
            "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
            '--aptopt=APT::Install-Recommends "false"',
            *dpkgopts,
            f"--include={','.join(PACKAGES)}",
            f'--customize-hook=sh {hook} "$1"',
            SUITE,
            str(tmp / "layer.tar"),
            *sources,
        ]
        log.debug("running %s", " ".join(argv))
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(layers.MTIME)}
        loglines.run(argv, step, mmdebstrap_phase, "phases", env=env)
        hook.unlink()

    return cached(root / f"base-{k}", build, step) / "layer.tar"


def requirements(pyproject: pathlib.Path) -> list[str]:
    data = tomllib.loads(pyproject.read_text())
    return sorted(str(d) for d in data["project"]["dependencies"])


def compile_tree(top: pathlib.Path, prefix: str) -> None:
    """Byte-compile `top` as it will sit at `/prefix` (unchecked hashes: a read-only root
    filesystem never rewrites them, and the layer's fixed mtimes can't invalidate them)."""
    run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(top),
            "-p",
            f"/{prefix}",
            str(top),
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
    )


def deps(root: pathlib.Path, pyproject: pathlib.Path, step: render.Step) -> pathlib.Path:
    """pyproject's runtime dependencies from PyPI (wheels only) under /usr/local."""
    reqs = requirements(pyproject)
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    if py != "3.11":
        raise SystemExit(f"build-images: needs Python 3.11 (the image's), not {py}")
    k = key("deps/1", py, *reqs)

    def build(tmp: pathlib.Path) -> None:
        log.debug("Installing %d runtime dependencies from PyPI (wheels only).", len(reqs))
        tree = tmp / "tree"
        site = tree / SITE
        argv = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--no-compile",
            "--no-warn-script-location",
            "--target",
            str(site),
            *reqs,
        ]
        log.debug("running %s", " ".join(argv))
        loglines.run(argv, step, pip_package, "packages")
        # Console scripts carry this machine's interpreter path: the images run `python3 -m`.
        shutil.rmtree(site / "bin", ignore_errors=True)
        compile_tree(site, SITE)
        layers.write(tmp / "layer.tar", tree)
        shutil.rmtree(tree)
        freeze = subprocess.run(
            [sys.executable, "-m", "pip", "list", "--path", str(site), "--format=freeze"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        (tmp / "requirements.lock").write_text(freeze.stdout)

    return cached(root / f"deps-{k}", build, step) / "layer.tar"


def code_files(repo: pathlib.Path) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "--", *CODE],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return sorted(f for f in out.splitlines() if (repo / f).is_file() and "__pycache__" not in f)


def code(root: pathlib.Path, repo: pathlib.Path, step: render.Step) -> pathlib.Path:
    """The project's packages (tracked and new files of the work tree) under /usr/local."""
    files = code_files(repo)
    k = key("code/1", layers.tree_hash(repo, files))

    def build(tmp: pathlib.Path) -> None:
        tree = tmp / "tree"
        for f in files:
            dest = tree / SITE / f
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(repo / f, dest)
            dest.chmod(0o644)
        compile_tree(tree / SITE, SITE)
        layers.write(tmp / "layer.tar", tree)
        shutil.rmtree(tree)

    return cached(root / f"code-{k}", build, step) / "layer.tar"


def go_samples(root: pathlib.Path, step: render.Step) -> pathlib.Path:
    """knative.dev/eventing's cmd/event_display and cmd/heartbeats: CGO off, static; one
    `go build` of both (one moving line: packages compiled out of both programs' total)."""
    go = subprocess.run(["go", "version"], capture_output=True, text=True, check=True).stdout
    k = key("go/1", go, catalog.EVENTING)

    def build(tmp: pathlib.Path) -> None:
        log.debug(
            "Building knative.dev/eventing@%s event_display and heartbeats.", catalog.EVENTING
        )
        work = tmp / "mod"
        work.mkdir()
        (work / "go.mod").write_text("module kevents.local/samples\n\ngo 1.25.0\n")
        env = {**os.environ, "GONOSUMDB": "knative.dev", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
        get = ["go", "get", f"knative.dev/eventing@{catalog.EVENTING}"]
        loglines.run(get, step, go_download, "modules", cwd=str(work), env=env)
        programs = [f"knative.dev/eventing/cmd/{cmd}" for cmd in ("event_display", "heartbeats")]
        # `-o DIR/`: each program is written into DIR under its own name
        argv = ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", f"{tmp}/", *programs]
        status = gobuild.run(argv, step, cwd=str(work), env=env, messages=sys.stderr)
        if status != 0:
            raise subprocess.CalledProcessError(status, argv)
        shutil.rmtree(work)

    return cached(root / f"go-{k}", build, step)


def go_layer(root: pathlib.Path, binaries: pathlib.Path, cmd: str) -> pathlib.Path:
    """A ko-like image's layers in one: /etc/passwd with `nonroot`, CA certificates, /tmp,
    and the program at /ko-app/<cmd>."""
    out = binaries / f"{cmd}.layer.tar"
    if out.exists():
        return out
    uid, gid = catalog.NONROOT.split(":")
    passwd = (
        "root:x:0:0:root:/root:/sbin/nologin\n"
        f"nonroot:x:{uid}:{gid}:nonroot:/home/nonroot:/sbin/nologin\n"
    )
    certs = pathlib.Path("/etc/ssl/certs/ca-certificates.crt")
    entries: list[tuple[str, bytes | None, int]] = [
        ("etc", None, 0o755),
        ("etc/passwd", passwd.encode(), 0o644),
        ("etc/group", f"root:x:0:\nnonroot:x:{gid}:\n".encode(), 0o644),
        ("etc/ssl", None, 0o755),
        ("etc/ssl/certs", None, 0o755),
        ("etc/ssl/certs/ca-certificates.crt", certs.read_bytes() if certs.exists() else b"", 0o644),
        ("home", None, 0o755),
        ("tmp", None, 0o1777),
        ("var", None, 0o755),
        ("var/run", None, 0o755),
        ("var/run/ko", None, 0o755),
        ("ko-app", None, 0o755),
        (f"ko-app/{cmd}", (binaries / cmd).read_bytes(), 0o755),
    ]
    layers.write_entries(out, entries)
    return out


def busybox(root: pathlib.Path, step: render.Step) -> pathlib.Path:
    """Debian's busybox-static (this machine's apt candidate, the same suite as the base):
    /bin/busybox and a link per applet, /tmp, /etc/passwd."""
    k = key("busybox/1", SUITE)

    def build(tmp: pathlib.Path) -> None:
        # as root into a folder apt's `_apt` user cannot enter: no sandbox (and no warning)
        run(
            ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", "busybox-static"],
            cwd=tmp, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deb = next(tmp.glob("busybox-static_*.deb"))
        unpacked = tmp / "deb"
        run(["dpkg-deb", "-x", str(deb), str(unpacked)])
        tree = tmp / "tree"
        for d in ("bin", "etc", "tmp", "root", "home", "var", "usr/bin", "usr/sbin", "sbin"):
            (tree / d).mkdir(parents=True, exist_ok=True)
        (tree / "tmp").chmod(0o1777)
        (tree / "root").chmod(0o700)
        shutil.copy(unpacked / "bin" / "busybox", tree / "bin" / "busybox")
        applets = subprocess.run(
            [str(tree / "bin" / "busybox"), "--list-full"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        for applet in applets:
            link = tree / applet
            if link.exists() or link.is_symlink():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
        (tree / "etc" / "passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
        )
        (tree / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
        layers.write(tmp / "layer.tar", tree)
        shutil.rmtree(tree)
        shutil.rmtree(unpacked)
        deb.unlink()

    return cached(root / f"busybox-{k}", build, step) / "layer.tar"
