"""The runc runtime's pure parts: references as a runtime normalises them, the OCI runtime
spec a pod's container gets (user, read-only root, capabilities, no_new_privileges, limits,
namespaces, mounts, command/args), the image's user from its passwd file."""

from __future__ import annotations

import hashlib
import os
import pathlib
from typing import Any

import pytest

from hack.agent import containers, errors, imagestore, runc


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("busybox", ("docker.io/library/busybox", "latest", "")),
        ("python:3.11", ("docker.io/library/python", "3.11", "")),
        ("docker.io/library/python:3.11", ("docker.io/library/python", "3.11", "")),
        ("index.docker.io/library/debian", ("docker.io/library/debian", "latest", "")),
        ("docker.io/debian:12", ("docker.io/library/debian", "12", "")),
        ("kevents/controller:0.1.0", ("docker.io/kevents/controller", "0.1.0", "")),
        (
            "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display",
            ("gcr.io/knative-releases/knative.dev/eventing/cmd/event_display", "latest", ""),
        ),
        (
            "github.com/knative/eventing-sources/cmd/heartbeats",
            ("github.com/knative/eventing-sources/cmd/heartbeats", "latest", ""),
        ),
        ("localhost:5000/x/y:1@sha256:ab", ("localhost:5000/x/y", "1", "sha256:ab")),
        ("x/y@sha256:ab", ("docker.io/x/y", "", "sha256:ab")),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_normalise(reference: str, expected: tuple[str, str, str]) -> None:
    assert imagestore.normalise(reference) == expected


def test_chain_id_follows_the_oci_definition() -> None:
    # ChainID(A|B) = sha256("sha256:A sha256:B")
    assert imagestore.chain_id(["sha256:a"]) == "sha256:a"
    expected = hashlib.sha256(b"sha256:a sha256:b").hexdigest()
    assert imagestore.chain_id(["sha256:a", "sha256:b"]) == f"sha256:{expected}"
    assert imagestore.chain_id(["sha256:a", "sha256:b"]) != imagestore.chain_id(
        ["sha256:b", "sha256:a"]
    )


def _rootfs(tmp: pathlib.Path) -> pathlib.Path:
    (tmp / "etc").mkdir(parents=True, exist_ok=True)
    (tmp / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n"
    )
    (tmp / "etc/group").write_text("root:x:0:\nnonroot:x:65532:\nstaff:x:50:\n")
    return tmp


@pytest.mark.parametrize(
    ("user", "expected"),
    [("", (0, 0)), ("65532:65532", (65532, 65532)), ("nonroot", (65532, 65532)),
     ("65532", (65532, 65532)), ("1000", (1000, 0)), ("nonroot:staff", (65532, 50))],
)  # fmt: skip
def test_image_user(tmp_path: pathlib.Path, user: str, expected: tuple[int, int]) -> None:
    assert runc.lookup_user(_rootfs(tmp_path), user) == expected


def test_unknown_user_name_is_a_config_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.ContainerConfigError, match="unable to find user nobody"):
        runc.lookup_user(_rootfs(tmp_path), "nobody")


def _inputs(tmp: pathlib.Path, container: dict[str, Any], pod_sc: dict[str, Any] | None = None,
            image_config: dict[str, Any] | None = None) -> runc.Inputs:  # fmt: skip
    image = imagestore.Resolved(
        reference="kevents/controller:0.1.0",
        repository="docker.io/kevents/controller",
        digest="sha256:abc",
        config=image_config
        or {
            "User": "65532:65532",
            "Entrypoint": ["python3", "-m", "controller"],
            "Env": ["PATH=/usr/bin:/bin", "PYTHONUNBUFFERED=1"],
        },
        layers=(),
        chain="sha256:def",
    )
    return runc.Inputs(
        pod={"metadata": {"uid": "u"}, "spec": {"securityContext": pod_sc or {}}},
        container={"name": "c", **container},
        image=image,
        rootfs=_rootfs(tmp),
        env={"NAME": "value", "PYTHONUNBUFFERED": "0"},
        mounts=[
            containers.Mount(pathlib.Path("/v/cfg"), "/etc/config", read_only=True),
            containers.Mount(pathlib.Path("/v/hosts"), "/etc/hosts", is_file=True),
        ],
        hostname="pod-a",
        netns_path="/run/netns/kev-1",
        cgroup="/kevents/kev-u-c",
    )


def test_a_restricted_container_gets_the_images_user_a_read_only_root_and_no_capabilities(
    tmp_path: pathlib.Path,
) -> None:
    doc, read_only = runc.spec(
        _inputs(
            tmp_path,
            {
                "securityContext": {
                    "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
            },
        )
    )
    assert read_only and doc["root"]["readonly"] is True
    proc = doc["process"]
    assert proc["user"] == {"uid": 65532, "gid": 65532, "additionalGids": []}
    assert proc["args"] == ["python3", "-m", "controller"]
    assert proc["noNewPrivileges"] is True
    assert proc["capabilities"]["bounding"] == []
    env = dict(e.split("=", 1) for e in proc["env"])
    assert env["PYTHONUNBUFFERED"] == "0"  # the container's env wins over the image's
    assert env["PATH"] == "/usr/bin:/bin" and env["NAME"] == "value"
    assert env["HOSTNAME"] == "pod-a"
    assert doc["linux"]["resources"]["memory"] == {"limit": 64 * 1024 * 1024}
    assert doc["linux"]["resources"]["cpu"] == {"period": 100_000, "quota": 25_000}
    assert {"type": "network", "path": "/run/netns/kev-1"} in doc["linux"]["namespaces"]
    binds = {m["destination"]: m for m in doc["mounts"] if m["type"] == "bind"}
    assert binds["/etc/config"]["options"] == ["rbind", "rprivate", "ro"]
    assert binds["/etc/hosts"]["source"] == "/v/hosts"


def test_pod_and_container_security_context_override_the_image(tmp_path: pathlib.Path) -> None:
    doc, read_only = runc.spec(
        _inputs(
            tmp_path,
            {
                "securityContext": {"runAsUser": 1000, "capabilities": {"add": ["NET_ADMIN"]}},
                "command": ["sh", "-c"],
                "args": ["echo $(NAME)"],
                "workingDir": "/tmp",
            },
            pod_sc={
                "runAsUser": 7,
                "runAsGroup": 3000,
                "fsGroup": 2000,
                "supplementalGroups": [4000],
            },
        )  # fmt: skip
    )
    assert not read_only
    proc = doc["process"]
    assert proc["user"] == {"uid": 1000, "gid": 3000, "additionalGids": [4000, 2000]}
    assert proc["args"] == ["sh", "-c", "echo value"]
    assert proc["cwd"] == "/tmp"
    assert proc["noNewPrivileges"] is False
    assert "CAP_NET_ADMIN" in proc["capabilities"]["bounding"]
    assert "CAP_CHOWN" in proc["capabilities"]["bounding"]


def test_args_replace_the_images_cmd_and_keep_its_entrypoint(tmp_path: pathlib.Path) -> None:
    config = {"Entrypoint": ["/ko-app/heartbeats"], "Cmd": ["--period=5"]}
    doc, _ = runc.spec(_inputs(tmp_path, {"args": ["--period=1"]}, image_config=config))
    assert doc["process"]["args"] == ["/ko-app/heartbeats", "--period=1"]
    doc, _ = runc.spec(_inputs(tmp_path, {}, image_config=config))
    assert doc["process"]["args"] == ["/ko-app/heartbeats", "--period=5"]
    assert doc["process"]["user"]["uid"] == 0


def test_run_as_non_root_refuses_an_image_that_runs_as_root(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.ContainerConfigError, match="runAsNonRoot"):
        runc.spec(
            _inputs(
                tmp_path,
                {"securityContext": {"runAsNonRoot": True}},
                image_config={"Cmd": ["sh"]},
            )
        )


@pytest.mark.parametrize(
    ("annotations", "default", "expected"),
    [({}, "process", False), ({}, "runc", True),
     ({runc.ANNOTATION: "runc"}, "process", True), ({runc.ANNOTATION: "process"}, "runc", False)],
)  # fmt: skip
def test_the_pod_annotation_chooses_the_runtime(
    annotations: dict[str, str], default: str, expected: bool
) -> None:
    pod = {"metadata": {"annotations": annotations}}
    assert runc.wanted(pod, default) is expected


def test_unused_root_filesystems_beyond_the_newest_few_are_removed(
    tmp_path: pathlib.Path,
) -> None:
    store = imagestore.ImageStore(None, tmp_path, tmp_path)
    names = [f"chain{i}" for i in range(imagestore.KEEP + 3)]
    for age, name in enumerate(names):
        (tmp_path / name / "rootfs").mkdir(parents=True)
        (tmp_path / name / ".done").touch()
        os.utime(tmp_path / name / ".done", (1_000_000 - age, 1_000_000 - age))
    store.busy["chain6"] += 1  # the oldest, but a container runs from it
    store.prune()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [*names[: imagestore.KEEP], "chain6"]
