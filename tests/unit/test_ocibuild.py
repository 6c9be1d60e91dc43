"""hack/build-images' pure parts: the Containerfiles agree with what it builds, layer tars are
deterministic, the Debian mirror is the one apt uses."""

from __future__ import annotations

import os
import pathlib
import re

import pytest

from hack.ocibuild import catalog, layers

REPO = pathlib.Path(__file__).resolve().parents[2]
CONTAINERFILES = sorted(REPO.glob("images/*/Containerfile"))


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
