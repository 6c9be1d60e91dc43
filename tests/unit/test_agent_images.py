"""Image reference -> local command, with container-runtime command/args semantics."""

from __future__ import annotations

import pytest

from hack.agent import errors, images

MAP = images.ImageMap.load()


@pytest.mark.parametrize(
    ("reference", "repository"),
    [
        ("python:3.11", "python"),
        ("docker.io/library/python:3.11-slim", "python"),
        ("kevents/dispatcher@sha256:abcd", "kevents/dispatcher"),
        ("localhost:5000/kevents/controller:v1", "localhost:5000/kevents/controller"),
        (
            "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display",
            "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display",
        ),
    ],
)
def test_repository(reference: str, repository: str) -> None:
    assert images.repository(reference) == repository


@pytest.mark.parametrize(
    ("reference", "entrypoint"),
    [
        ("kevents/controller:latest", ["python", "-m", "controller"]),
        ("ghcr.io/acme/kevents/dispatcher:v0.1", ["python", "-m", "dispatcher"]),
        ("kevents/apiserver-source", ["python", "-m", "sources.apiserver"]),
        ("kevents/heartbeat", ["python", "-m", "sources.container.heartbeat"]),
        (
            "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display@sha256:1f2e",
            ["python", "-m", "display"],
        ),
        (
            "gcr.io/knative-releases/knative.dev/eventing/cmd/heartbeats:latest",
            ["python", "-m", "sources.container.heartbeat"],
        ),
        (
            "github.com/knative/eventing-sources/cmd/heartbeats",
            ["python", "-m", "sources.container.heartbeat"],
        ),
        (
            "gcr.io/knative-releases/github.com/knative/eventing-sources/cmd/message_dumper@sha256:ab",
            ["python", "-m", "display"],
        ),
    ],
)
def test_known_images_map_to_entry_points(reference: str, entrypoint: list[str]) -> None:
    assert images.argv(MAP.lookup(reference), None, None) == entrypoint


def test_the_2018_heartbeats_image_runs_without_pod_name_and_namespace() -> None:
    beats = MAP.lookup("gcr.io/knative-releases/github.com/knative/eventing-sources/cmd/heartbeats")
    assert (beats.env["POD_NAME"], beats.env["POD_NAMESPACE"]) == ("heartbeats", "default")
    assert "POD_NAME" not in MAP.lookup("kevents/heartbeat").env


def test_command_and_args_semantics() -> None:
    ctl = MAP.lookup("kevents/controller")
    assert images.argv(ctl, None, ["--debug"]) == ["python", "-m", "controller", "--debug"]
    assert images.argv(ctl, ["sh", "-c"], ["echo hi"]) == ["sh", "-c", "echo hi"]
    py = MAP.lookup("python:3.11")
    assert images.argv(py, None, None) == ["python3"]
    assert images.argv(py, ["python", "-c", "print(1)"], None) == ["python", "-c", "print(1)"]
    assert py.env["PYTHONUNBUFFERED"] == "1"


def test_unknown_image_is_a_readable_error() -> None:
    with pytest.raises(errors.UnknownImage, match='image "example.com/nope:1" is not known'):
        MAP.lookup("example.com/nope:1")
    assert errors.UnknownImage.reason == "ErrImagePull"
