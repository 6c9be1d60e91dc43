"""A pod's volumes as directories under the pod's folder, refreshed while the pod runs.

Secret, ConfigMap, downward API and projected volumes are rewritten in place (each file
atomically), so a bind mount of the volume's directory sees updates, as with the kubelet.
ServiceAccount tokens come from the TokenRequest API, bound to the pod, and are renewed once
80% of their lifetime has passed.
"""

from __future__ import annotations

import base64
import datetime
import logging
import os
import pathlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hack.agent import envvars, errors
from kevents import kubeapi

log = logging.getLogger(__name__)

SERVICEACCOUNTS = kubeapi.Resource("", "v1", "serviceaccounts")

Obj = dict[str, Any]
Files = dict[str, tuple[bytes, int]]
"""Relative path -> (content, mode) of one volume."""


@dataclass
class _Token:
    token: str
    fetched: float
    expires: float

    def stale(self, now: float) -> bool:
        return now >= self.fetched + 0.8 * (self.expires - self.fetched)


def _items(
    data: Mapping[str, bytes], items: list[Obj] | None, default_mode: int, what: str
) -> Files:
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    files: Files = {}
    for item in items:
        key = item["key"]
        if key not in data:
            raise errors.ContainerConfigError(f"couldn't find key {key} in {what}")
        files[item["path"]] = (data[key], int(item.get("mode", default_mode)))
    return files


def _secret_data(obj: Obj) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


def _configmap_data(obj: Obj) -> dict[str, bytes]:
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def downward_files(
    pod: Obj, items: list[Obj], default_mode: int, allocatable: Mapping[str, str]
) -> Files:
    """A downwardAPI volume (or projection): fieldRef / resourceFieldRef values as files."""
    files: Files = {}
    for item in items:
        mode = int(item.get("mode", default_mode))
        if "fieldRef" in item:
            value = envvars.field_value(pod, item["fieldRef"]["fieldPath"])
        else:
            ref = item["resourceFieldRef"]
            value = envvars.resource_value(pod, ref.get("containerName", ""), ref, allocatable)
        files[item["path"]] = (value.encode(), mode)
    return files


class Volumes:
    """Materialises the volumes of one pod under `root/<volume name>`."""

    def __init__(
        self,
        client: kubeapi.KubeApi,
        pod: Obj,
        root: pathlib.Path,
        allocatable: Mapping[str, str],
    ) -> None:
        self.client = client
        self.pod = pod
        self.root = root
        self.allocatable = allocatable
        self._tokens: dict[tuple[str, int], _Token] = {}

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    def path(self, name: str) -> pathlib.Path:
        for vol in self.pod["spec"].get("volumes") or ():
            if vol["name"] == name and "hostPath" in vol:
                return pathlib.Path(vol["hostPath"]["path"])
        return self.root / name

    async def _get(self, kind: str, name: str, optional: bool) -> Obj | None:
        obj = await self.client.get_or_none(kubeapi.Resource("", "v1", kind), self.namespace, name)
        if obj is None and not optional:
            singular = kind[:-1]
            raise errors.ContainerConfigError(f'{singular} "{name}" not found')
        return obj

    async def _token(self, source: Obj) -> bytes:
        audience = str(source.get("audience", ""))
        seconds = int(source.get("expirationSeconds", 3600))
        key = (audience, seconds)
        now = time.time()
        cached = self._tokens.get(key)
        if cached is None or cached.stale(now):
            meta = self.pod["metadata"]
            sa = self.pod["spec"].get("serviceAccountName") or "default"
            spec: Obj = {
                "expirationSeconds": seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            }
            if audience:
                spec["audiences"] = [audience]
            answer = await self.client.request(
                "POST",
                SERVICEACCOUNTS.path(self.namespace, sa) + "/token",
                body={
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": spec,
                },
            )
            expires = datetime.datetime.fromisoformat(
                answer["status"]["expirationTimestamp"].replace("Z", "+00:00")
            ).timestamp()
            cached = _Token(answer["status"]["token"], now, expires)
            self._tokens[key] = cached
            log.info(
                "Issued a ServiceAccount token for pod %s/%s.",
                self.namespace,
                meta["name"],
                extra={"namespace": self.namespace, "pod": meta["name"]},
            )
        return cached.token.encode()

    async def _files(self, vol: Obj) -> Files | None:
        """The files of one volume; None for volumes that are plain directories."""
        if "secret" in vol:
            src = vol["secret"]
            mode = int(src.get("defaultMode", 0o644))
            obj = await self._get("secrets", src["secretName"], bool(src.get("optional")))
            data = _secret_data(obj) if obj else {}
            return _items(data, src.get("items"), mode, f"secret {src['secretName']}")
        if "configMap" in vol:
            src = vol["configMap"]
            mode = int(src.get("defaultMode", 0o644))
            obj = await self._get("configmaps", src["name"], bool(src.get("optional")))
            data = _configmap_data(obj) if obj else {}
            return _items(data, src.get("items"), mode, f"configmap {src['name']}")
        if "downwardAPI" in vol:
            src = vol["downwardAPI"]
            mode = int(src.get("defaultMode", 0o644))
            return downward_files(self.pod, src.get("items") or [], mode, self.allocatable)
        if "projected" in vol:
            return await self._projected(vol["projected"])
        if "emptyDir" in vol or "hostPath" in vol:
            return None
        kinds = sorted(k for k in vol if k != "name")
        raise errors.ContainerConfigError(
            f"volume {vol['name']}: {', '.join(kinds)} volumes are not supported by the agent"
        )

    async def _projected(self, spec: Obj) -> Files:
        mode = int(spec.get("defaultMode", 0o644))
        files: Files = {}
        for src in spec.get("sources") or ():
            if "serviceAccountToken" in src:
                sat = src["serviceAccountToken"]
                files[sat["path"]] = (await self._token(sat), mode)
            elif "secret" in src:
                s = src["secret"]
                obj = await self._get("secrets", s["name"], bool(s.get("optional")))
                data = _secret_data(obj) if obj else {}
                files.update(_items(data, s.get("items"), mode, f"secret {s['name']}"))
            elif "configMap" in src:
                c = src["configMap"]
                obj = await self._get("configmaps", c["name"], bool(c.get("optional")))
                data = _configmap_data(obj) if obj else {}
                files.update(_items(data, c.get("items"), mode, f"configmap {c['name']}"))
            elif "downwardAPI" in src:
                items = src["downwardAPI"].get("items") or []
                files.update(downward_files(self.pod, items, mode, self.allocatable))
            else:
                kinds = ", ".join(sorted(src))
                raise errors.ContainerConfigError(f"projected source {kinds} is not supported")
        return files

    async def materialise(self) -> None:
        """Write (or refresh) every volume; ContainerConfigError if one can't be made."""
        for vol in self.pod["spec"].get("volumes") or ():
            files = await self._files(vol)
            target = self.path(vol["name"])
            if "hostPath" in vol:
                if vol["hostPath"].get("type") == "DirectoryOrCreate":
                    target.mkdir(parents=True, exist_ok=True)
                continue
            target.mkdir(parents=True, exist_ok=True)
            if "emptyDir" in vol:
                # world-writable like the kubelet's (0777): a non-root container writes its
                # scratch space, e.g. /tmp under a read-only root filesystem
                target.chmod(0o777)
            if files is not None:
                write(target, files)


def write(directory: pathlib.Path, files: Files) -> None:
    """Make `directory` hold exactly `files`, replacing each changed file atomically."""
    for rel, (content, mode) in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and path.read_bytes() == content:
            if (path.stat().st_mode & 0o777) != mode:
                path.chmod(mode)
            continue
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(content)
        tmp.chmod(mode)
        os.replace(tmp, path)
    wanted = {directory / rel for rel in files}
    for path in sorted(directory.rglob("*"), reverse=True):
        if path.is_file() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
