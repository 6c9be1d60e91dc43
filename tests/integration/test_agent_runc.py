"""The node agent's runc runtime with real images from `hack/build-images` and real runc:
a container of a pod runs the image's program as the image's user, a read-only root
filesystem refuses writes, its status carries the image's digest, a pod stop leaves no
container behind, an image nobody built is ErrImagePull, and `skopeo inspect` shows what the
archives promise (user 65532, entrypoint, OCI labels).

The pod's side is a small stand-in (as in test_agent_container_events.py) whose `launch` goes
through `runc.Runtime.launch` exactly as the pod worker's does in runc mode."""

from __future__ import annotations

import asyncio
import json
import pathlib
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from hack.agent import containers, errors, imagestore, runc

Obj = dict[str, Any]
REPO = pathlib.Path(__file__).resolve().parents[2]
# The first test of a machine builds the images (`built`): minutes, more than the 300 s default.
pytestmark = pytest.mark.timeout(2400)


@pytest.fixture(scope="module")
def built() -> Iterator[pathlib.Path]:
    """hack/build-images' output folder (a cache hit after the first build on a machine)."""
    out = subprocess.run(
        [str(REPO / "hack/build-images")], capture_output=True, text=True, check=True
    ).stdout.strip()
    yield pathlib.Path(out.splitlines()[-1])


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Unpacked root filesystems, shared by the module's tests as by a node's pods."""
    return tmp_path_factory.mktemp("rootfs")


def digests(built: pathlib.Path) -> dict[str, str]:
    data = json.loads((built / "images.json").read_text())
    return {item["name"]: item["digest"] for item in data["images"]}


class Pod:
    """What a container needs from its pod worker, launching through the runc runtime."""

    def __init__(self, tmp: pathlib.Path, runtime: runc.Runtime, pod: Obj) -> None:
        self.stopping = asyncio.Event()
        self.grace = 2.0
        self.host_ip = self.pod_ip = "127.0.0.1"
        self.name = "ns/p"
        self.tmp = tmp
        self.runtime = runtime
        self.pod = pod
        self.events: list[tuple[str, str]] = []

    @property
    def formatted(self) -> str:
        return "p_ns(uid)"

    async def launch(self, spec: Obj) -> containers.Launch:
        return await self.runtime.launch(
            pod=self.pod, pod_dir=self.tmp / "pod", spec_=spec, env={"GREETING": "hello"},
            mounts=[], hostname="p", netns_path="",
        )  # fmt: skip

    def changed(self) -> None:
        pass

    def log_dir(self, container: str) -> pathlib.Path:
        return self.tmp / "logs" / container

    def record_pid(self, container: str, pid: int | None) -> None:
        pass

    def event(self, container: str, *, init: bool, type_: str, reason: str, message: str) -> None:
        self.events.append((reason, message))

    def log(self, container: str = "app") -> str:
        path = self.log_dir(container) / "current.log"
        return path.read_text() if path.exists() else ""


def make_pod(tmp: pathlib.Path, built: pathlib.Path, rootfs: pathlib.Path, uid: str) -> Pod:
    store = imagestore.ImageStore(built / "layout", rootfs, REPO)
    runtime = runc.Runtime(store, tmp, "runc")
    pod = {"metadata": {"uid": uid, "name": "p", "namespace": "ns"}, "spec": {}}
    return Pod(tmp, runtime, pod)


async def run_once(pod: Pod, spec: Obj) -> containers.Container:
    app = containers.Container(
        pod, {"name": "app", **spec}, init=False, restart_policy="Never",
        backoff=containers.Backoff(base=0.2, cap=0.2),
    )  # fmt: skip
    await asyncio.wait_for(app.run(), 120)
    return app


def written_to_image(rootfs: pathlib.Path, name: str) -> bool:
    return any((chain / "rootfs" / name).exists() for chain in rootfs.iterdir())


def runc_containers(tmp: pathlib.Path) -> list[str]:
    out = subprocess.run(
        ["runc", "--root", str(tmp / "runc"), "list", "--quiet"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()


async def test_a_kevents_image_runs_as_65532_with_a_read_only_root_and_reports_its_digest(
    tmp_path: pathlib.Path, built: pathlib.Path, rootfs: pathlib.Path
) -> None:
    pod = make_pod(tmp_path, built, rootfs, "uid-readonly")
    script = (
        "id -u; id -g; touch /written && echo WROTE-ROOT; "
        "python3 -c 'import controller.app, aiohttp, orjson, uvloop; print(\"imports-ok\")'; "
        'echo "greeting=$GREETING"'
    )
    app = await run_once(
        pod,
        {
            "image": "kevents/controller:0.1.0",
            "command": ["sh", "-c", script],
            "securityContext": {
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        },
    )
    log = pod.log()
    assert log.splitlines()[:2] == ["65532", "65532"], log
    assert "Read-only file system" in log and "WROTE-ROOT" not in log
    assert "imports-ok" in log and "greeting=hello" in log
    status = app.rt.to_json()
    assert status["imageID"] == f"docker.io/kevents/controller@{digests(built)['controller']}"
    assert status["state"]["terminated"]["exitCode"] == 0
    assert runc_containers(tmp_path) == []


async def test_a_writable_root_is_the_containers_own_and_gone_after_it_exits(
    tmp_path: pathlib.Path, built: pathlib.Path, rootfs: pathlib.Path
) -> None:
    pod = make_pod(tmp_path, built, rootfs, "uid-writable")
    spec = {"image": "busybox", "command": ["sh", "-c", "ls /mark 2>&1; touch /mark; id -u"]}
    await run_once(pod, spec)
    assert pod.log().splitlines() == ["ls: /mark: No such file or directory", "0"]
    await run_once(pod, spec)  # the next container starts from the image again
    assert pod.log().splitlines() == ["ls: /mark: No such file or directory", "0"]
    assert not written_to_image(rootfs, "mark")


async def test_run_as_user_and_an_exit_code_pass_through(
    tmp_path: pathlib.Path, built: pathlib.Path, rootfs: pathlib.Path
) -> None:
    pod = make_pod(tmp_path, built, rootfs, "uid-user")
    app = await run_once(
        pod,
        {
            "image": "python:3.11",
            "command": [
                "python3",
                "-c",
                "import os, sys; print(os.getuid(), os.getgid()); sys.exit(3)",
            ],
            "securityContext": {"runAsUser": 1234, "runAsGroup": 4321},
        },
    )
    assert pod.log().strip() == "1234 4321"
    assert app.rt.to_json()["state"]["terminated"]["exitCode"] == 3


async def test_a_stopped_pod_leaves_no_container_even_one_that_ignores_sigterm(
    tmp_path: pathlib.Path, built: pathlib.Path, rootfs: pathlib.Path
) -> None:
    pod = make_pod(tmp_path, built, rootfs, "uid-stop")
    app = containers.Container(
        pod, {"name": "app", "image": "busybox",
              "command": ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"]},
        init=False, restart_policy="Always", backoff=containers.Backoff(),
    )  # fmt: skip
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(app.run())
        for _ in range(600):
            if "ready" in pod.log():
                break
            await asyncio.sleep(0.1)
        assert runc_containers(tmp_path) != []
        pod.stopping.set()
        await asyncio.wait_for(task, 60)
    assert runc_containers(tmp_path) == []
    assert app.rt.to_json()["state"]["terminated"]["exitCode"] == 137


async def test_an_image_nobody_built_is_err_image_pull(
    tmp_path: pathlib.Path, built: pathlib.Path, rootfs: pathlib.Path
) -> None:
    pod = make_pod(tmp_path, built, rootfs, "uid-unknown")
    with pytest.raises(errors.UnknownImage, match="registry.example/no/such:1"):
        await pod.launch({"name": "app", "image": "registry.example/no/such:1"})
    assert errors.UnknownImage.reason == "ErrImagePull"


def skopeo_inspect(archive: pathlib.Path, *, config: bool = False) -> Obj:
    args = ["skopeo", "inspect", *(["--config"] if config else []), f"oci-archive:{archive}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    data: Obj = json.loads(out)
    return data


@pytest.mark.parametrize(
    ("name", "entrypoint"),
    [("controller", ["python3", "-m", "controller"]),
     ("dispatcher", ["python3", "-m", "dispatcher"]),
     ("knative-event-display", ["/ko-app/event_display"])],
)  # fmt: skip
def test_skopeo_inspect_shows_user_entrypoint_and_labels(
    built: pathlib.Path, name: str, entrypoint: list[str]
) -> None:
    archive = built / "archives" / f"{name}.tar"
    info = skopeo_inspect(archive)
    config = skopeo_inspect(archive, config=True)["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == entrypoint
    labels = info["Labels"]
    for key in ("source", "revision", "version"):
        assert labels[f"org.opencontainers.image.{key}"], key
    assert info["Digest"] == digests(built)[name]


def broken_layout(tmp_path: pathlib.Path, built: pathlib.Path) -> pathlib.Path:
    """A layout with `kevents/controller:broken`: the controller's image plus one layer
    whose whiteout deletes aiohttp (hard links share the built blobs)."""
    layout = tmp_path / "layout"
    layout.mkdir()
    subprocess.run(["cp", "-al", str(built / "layout" / "blobs"), str(layout)], check=True)
    for name in ("index.json", "oci-layout"):
        (layout / name).write_bytes((built / "layout" / name).read_bytes())
    index = json.loads((layout / "index.json").read_text())
    ref = "docker.io/kevents/controller:0.1.0"
    index["manifests"] = [
        {**m, "annotations": {imagestore.REF_NAME: "controller"}}
        for m in index["manifests"]
        if m["annotations"][imagestore.REF_NAME] == ref
    ]
    (layout / "index.json").write_text(json.dumps(index))
    site = tmp_path / "whiteout" / "usr/local/lib/python3.11/dist-packages"
    site.mkdir(parents=True)
    (site / ".wh.aiohttp").touch()
    subprocess.run(
        ["tar", "-cf", str(tmp_path / "broken.tar"), "-C", str(tmp_path / "whiteout"), "usr"],
        check=True,
    )
    subprocess.run(
        ["umoci", "raw", "add-layer", "--image", f"{layout}:controller", "--tag", "broken",
         str(tmp_path / "broken.tar")],
        check=True, capture_output=True,
    )  # fmt: skip
    index = json.loads((layout / "index.json").read_text())
    for m in index["manifests"]:
        if m["annotations"][imagestore.REF_NAME] == "broken":
            m["annotations"][imagestore.REF_NAME] = "docker.io/kevents/controller:broken"
    (layout / "index.json").write_text(json.dumps(index))
    return layout


async def test_an_image_without_a_dependency_crash_loops_with_the_traceback(
    tmp_path: pathlib.Path, built: pathlib.Path
) -> None:
    """The image is really what runs: the controller's image with aiohttp deleted by one more
    layer (a whiteout) fails at import, restart after restart, with Python's traceback."""
    layout = await asyncio.to_thread(broken_layout, tmp_path, built)
    store = imagestore.ImageStore(layout, tmp_path / "rootfs", REPO)
    pod = Pod(tmp_path, runc.Runtime(store, tmp_path, "runc"), {
        "metadata": {"uid": "uid-broken", "name": "p", "namespace": "ns"}, "spec": {}})  # fmt: skip
    app = containers.Container(
        pod, {"name": "app", "image": "kevents/controller:broken",
              "securityContext": {"readOnlyRootFilesystem": True}},
        init=False, restart_policy="Always", backoff=containers.Backoff(base=0.2, cap=0.2),
    )  # fmt: skip
    previous = tmp_path / "logs" / "app" / "previous.log"
    async with asyncio.TaskGroup() as tg:
        tg.create_task(app.run())
        for _ in range(1200):
            if app.rt.restart_count >= 2 and previous.exists():
                break
            await asyncio.sleep(0.1)
        pod.stopping.set()
    text = previous.read_text()
    assert "Traceback (most recent call last)" in text
    assert "ModuleNotFoundError: No module named 'aiohttp'" in text
    assert app.rt.restart_count >= 2
    assert runc_containers(tmp_path) == []


async def test_an_exec_probe_runs_inside_the_container(
    tmp_path: pathlib.Path, built: pathlib.Path, rootfs: pathlib.Path
) -> None:
    """The readiness probe reads a file the container wrote in its own root filesystem
    (an exec probe entering runc's process would look at the node's instead)."""
    pod = make_pod(tmp_path, built, rootfs, "uid-probe")
    marker = f"/ready-{tmp_path.name}"
    app = containers.Container(
        pod, {"name": "app", "image": "busybox",
              "command": ["sh", "-c", f"sleep 1; touch {marker}; while true; do sleep 1; done"],
              "readinessProbe": {"exec": {"command": ["cat", marker]}, "periodSeconds": 1}},
        init=False, restart_policy="Always", backoff=containers.Backoff(),
    )  # fmt: skip
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(app.run())
        for _ in range(600):
            if app.rt.ready:
                break
            await asyncio.sleep(0.1)
        ready = app.rt.ready
        pod.stopping.set()
        await asyncio.wait_for(task, 60)
    assert ready
    assert not await asyncio.to_thread(pathlib.Path(marker).exists)
