"""hack/build-images' pure parts: the Containerfiles agree with what it builds, layer tars are
deterministic, the Debian mirror is the one apt uses; its progress: each stage a numbered step
whose line moves with the logs of mmdebstrap, pip and `go get` (real logs captured on this
machine), a cache hit noted on the step, a failing command's log shown."""

from __future__ import annotations

import io
import os
import pathlib
import re
import subprocess
import sys

import pytest

from hack.ocibuild import catalog, layers, stages
from hack.progress import loglines, render

REPO = pathlib.Path(__file__).resolve().parents[2]
CONTAINERFILES = sorted(REPO.glob("images/*/Containerfile"))
FIXTURES = REPO / "tests" / "fixtures" / "ocibuild"


def _normalised(cf: pathlib.Path) -> str:
    """The Containerfile with its component's name and module blanked out."""
    name = cf.parent.name
    _, entrypoint = catalog.component(cf)
    text = cf.read_text().split("\n", 1)[1]  # the first line describes the component
    text = text.replace(f"images/{name}/", "images/NAME/").replace(f"kevents/{name}:", "NAME:")
    text = text.replace(f'title="{name}"', 'title="NAME"')
    return text.replace(f'"-m", "{entrypoint[-1]}"', '"-m", "MODULE"')


def test_every_component_image_is_the_same_recipe_but_its_entrypoint_and_title() -> None:
    texts = {cf.parent.name: _normalised(cf) for cf in CONTAINERFILES}
    assert len(texts) >= 8
    first = next(iter(texts.values()))
    assert {name for name, text in texts.items() if text != first} == set()


@pytest.mark.parametrize("cf", CONTAINERFILES, ids=[c.parent.name for c in CONTAINERFILES])
def test_containerfile_runs_as_nonroot_python3_module_and_labels_itself(cf: pathlib.Path) -> None:
    text = cf.read_text()
    title, entrypoint = catalog.component(cf)
    assert title == cf.parent.name
    assert entrypoint[:2] == ("python3", "-m")
    assert re.search(r"^USER 65532:65532$", text, re.M)
    for label in ("source", "revision", "version", "title"):
        assert f"org.opencontainers.image.{label}=" in text
    # the module exists in the tree
    module = entrypoint[2].replace(".", "/")
    assert (REPO / f"{module}.py").exists() or (REPO / module / "__main__.py").exists()


def test_catalog_names_every_component_under_docker_io_with_version_and_latest() -> None:
    images = catalog.images(REPO, "9.9.9", {"org.opencontainers.image.revision": "abc"})
    by_name = {i.name: i for i in images}
    for cf in CONTAINERFILES:
        image = by_name[cf.parent.name]
        assert image.refs == (
            f"docker.io/kevents/{cf.parent.name}:9.9.9",
            f"docker.io/kevents/{cf.parent.name}:latest",
        )
        assert image.user == "65532:65532"
        assert image.labels["org.opencontainers.image.revision"] == "abc"
    assert "docker.io/library/busybox:latest" in by_name["busybox"].refs
    assert "docker.io/library/python:3.11" in by_name["python"].refs
    display = by_name["knative-event-display"]
    assert "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display:latest" in display.refs
    assert display.entrypoint == ("/ko-app/event_display",)


def test_a_layer_tar_depends_on_content_only(tmp_path: pathlib.Path) -> None:
    def tree(root: pathlib.Path, mtime: int) -> None:
        (root / "usr/local/lib").mkdir(parents=True)
        (root / "usr/local/lib/a.py").write_text("x = 1\n")
        (root / "usr/local/lib/link").symlink_to("a.py")
        for p in root.rglob("*"):
            os.utime(p, (mtime, mtime), follow_symlinks=False)

    tree(tmp_path / "one", 1_000_000)
    tree(tmp_path / "two", 2_000_000)
    first = layers.write(tmp_path / "one.tar", tmp_path / "one")
    second = layers.write(tmp_path / "two.tar", tmp_path / "two")
    assert first == second
    (tmp_path / "two/usr/local/lib/a.py").write_text("x = 2\n")
    assert layers.write(tmp_path / "three.tar", tmp_path / "two") != first


def _steps(out: io.StringIO) -> render.Steps:
    """Plain rendering with a clock that stands still and a moving line at every change."""
    return render.Steps(
        total=7,
        renderer=render.Plain(out, wall=lambda: 1764662400.0, monotonic=lambda: 0.0, every=0),
        monotonic=lambda: 0.0,
    )


@pytest.mark.parametrize(
    ("log", "pick", "unit", "count", "first", "last"),
    [
        ("mmdebstrap.log", stages.mmdebstrap_phase, "phases", 18,
         "automatically chosen mode: root", "success in 94.2986 seconds"),
        ("pip.log", stages.pip_package, "packages", 37,
         "aiohttp<4,>=3.10", "tzdata (from python-dateutil>=2.8.2->cloudevents<3,>=2)"),
        ("goget.log", stages.go_download, "modules", 2,
         "github.com/google/go-cmp v0.7.0", "golang.org/x/sync v0.10.0"),
    ],
    ids=["mmdebstrap", "pip", "go-get"],
)  # fmt: skip
def test_a_fresh_stage_moves_its_line_with_the_tools_log(
    log: str, pick: loglines.Pick, unit: str, count: int, first: str, last: str
) -> None:
    """Logs captured from hack/build-images on this machine: mmdebstrap 1.3 (default
    verbosity: its `I:` phases among dpkg's lines), pip 26.3 installing the image's
    dependencies, `go get` of two modules into an empty module cache."""
    lines = (FIXTURES / log).read_text().splitlines(True)
    out = io.StringIO()
    with _steps(out).step("a stage") as step:
        followed = loglines.follow(lines, step, pick, unit)
    assert followed.counted == count
    assert len(followed.lines) == len(lines)
    printed = out.getvalue().splitlines()
    assert printed[1] == f"08:00:00 [1/7]   1 {unit} {first}"
    assert printed[-2] == f"08:00:00 [1/7]   {count} {unit} {last}"
    assert printed[-1] == "08:00:00 [1/7] a stage: done in 0.0s"


def test_a_cache_hit_is_noted_on_its_step_and_builds_nothing(tmp_path: pathlib.Path) -> None:
    built: list[pathlib.Path] = []

    def build(tmp: pathlib.Path) -> None:
        built.append(tmp)
        (tmp / "layer.tar").write_bytes(b"layer")

    out = io.StringIO()
    steps = _steps(out)
    with steps.step("the code layer") as step:
        first = stages.cached(tmp_path / "code-abc", build, step)
    with steps.step("the code layer") as step:
        again = stages.cached(tmp_path / "code-abc", build, step)
    assert first == again == tmp_path / "code-abc"
    assert len(built) == 1 and (first / "layer.tar").read_bytes() == b"layer"
    assert [line[9:] for line in out.getvalue().splitlines()] == [
        "[1/7] the code layer",
        "[1/7] the code layer: done in 0.0s",
        "[2/7] the code layer",
        "[2/7] the code layer: done in 0.0s (cached)",
    ]


def test_a_failing_command_shows_its_whole_log_and_fails_its_step() -> None:
    script = "print('Collecting a'); print('ERROR: no wheel for b'); raise SystemExit(3)"
    out, log = io.StringIO(), io.StringIO()
    steps = _steps(out)
    with (
        pytest.raises(subprocess.CalledProcessError) as failed,
        steps.step("Python runtime dependencies") as step,
    ):
        loglines.run([sys.executable, "-c", script], step, stages.pip_package, "packages",
                     failure_log=log)  # fmt: skip
    assert failed.value.returncode == 3
    assert log.getvalue() == "Collecting a\nERROR: no wheel for b\n"
    assert out.getvalue().splitlines()[1:] == [
        "08:00:00 [1/7]   1 packages a",
        "08:00:00 [1/7] Python runtime dependencies: FAILED in 0.0s",
    ]
