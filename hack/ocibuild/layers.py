"""Deterministic layer tars: sorted entries, owner root, one fixed mtime, no host metadata.

The same tree always gives the same bytes, hence the same diff ID, so a layer's digest only
changes when its content does.
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import stat
import tarfile
from collections.abc import Iterable

MTIME = 1_704_067_200
"""2024-01-01T00:00:00Z: every entry's mtime (a changing clock would change every digest)."""


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = stat.S_IMODE(st.st_mode)
    return info


def write(out: pathlib.Path, root: pathlib.Path, *, owners: dict[str, int] | None = None) -> str:
    """Tar every file under `root` (paths relative to it) into `out`; returns its sha256.

    `owners` gives a uid (= gid) for some paths (a home directory owned by the image user).
    """
    owners = owners or {}
    names: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        base = pathlib.Path(dirpath).relative_to(root).as_posix()
        for n in [*dirnames, *filenames]:
            rel = n if base == "." else f"{base}/{n}"
            names.add(rel)
            names.update(_parents(rel))
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(names):
            path = root / rel
            st = path.lstat()
            info = _info(rel, st)
            if rel in owners:
                info.uid = info.gid = owners[rel]
            if stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                tar.addfile(info)
            elif stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = st.st_size
                with path.open("rb") as f:
                    tar.addfile(info, f)
    tmp.replace(out)
    return sha256(out)


def write_entries(out: pathlib.Path, entries: Iterable[tuple[str, bytes | None, int]]) -> str:
    """Tar explicit entries (path, content or None for a directory, mode); returns sha256."""
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel, content, mode in sorted(entries):
            info = tarfile.TarInfo(rel)
            info.mtime = MTIME
            info.mode = mode
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    tmp.replace(out)
    return sha256(out)


def sha256(path: pathlib.Path) -> str:
    """The file's sha256, remembered in `<path>.sha256` (layer tars never change in place)."""
    memo = path.with_name(path.name + ".sha256")
    if memo.exists() and memo.stat().st_mtime >= path.stat().st_mtime:
        return memo.read_text().strip()
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    memo.write_text(h.hexdigest() + "\n")
    return h.hexdigest()


def tree_hash(root: pathlib.Path, files: Iterable[str]) -> str:
    """A hash of the named files' paths, modes and contents (the code layer's cache key)."""
    h = hashlib.sha256()
    for rel in sorted(files):
        path = root / rel
        st = path.lstat()
        h.update(f"{rel}\0{stat.S_IMODE(st.st_mode):o}\0".encode())
        h.update(path.read_bytes() if not stat.S_ISLNK(st.st_mode) else os.readlink(path).encode())
        h.update(b"\0")
    return h.hexdigest()
