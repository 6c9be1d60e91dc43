"""Knative Eventing's own end-to-end suite (rekt) against the local cluster: `hack/rekt`.

`hack/build-rekt` builds the suite (`rekt.test`) and the test images it deploys from
Knative's Go modules; this module wires them to the cluster and runs them:

- images: the suite asks for `ko://` packages; an images file (`--images.producer.file`)
  names `kevents.local/rekt/<name>` for each, which the node agent's image map
  (`hack/agent/images.yaml`) runs as `kevents-rekt-<name>`, a link to the built binary in
  the virtualenv's bin folder (on every container's PATH). The readiness-check Jobs' image
  (`registry.access.redhat.com/ubi8/ubi`, `/bin/sh -c curl ...`) runs on the host's tools.
- config maps: the suite reads `config-logging`, `config-observability` and
  `config-features` in SYSTEM_NAMESPACE; those missing are created from eventing's
  `config/core/configmaps` (kevents' own are left as they are).
- the run: `go tool test2json` over the binary, one line per finished test, every event
  kept in `.state/rekt/run.jsonl` and each failed test's output in `.state/rekt/<Test>.log`;
  the last line printed is `N passed, M failed`, failures named with their first error line.

    python -m hack.conformance BUILD_DIR [REGEXP] [--parallel N] [--timeout 60m]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from hack.agent import kubeconfig
from kevents import kubeapi

ROOT = pathlib.Path(__file__).resolve().parents[1]
STATE = ROOT / ".state" / "rekt"
SYSTEM_NAMESPACE = "kevents-system"
CONFIG_MAPS = kubeapi.Resource("", "v1", "configmaps")

IMAGES = {
    "knative.dev/reconciler-test/cmd/eventshub": "eventshub",
    "knative.dev/eventing/cmd/heartbeats": "heartbeats",
    "knative.dev/eventing/test/test_images/print": "print",
}
"""The `ko://` packages the selected tests deploy -> the binary's name in the build."""

SUITE_CONFIG = {
    "config-logging": "logging.yaml",
    "config-observability": "observability.yaml",
    "config-features": "features.yaml",
}
"""The config maps the suite reads in SYSTEM_NAMESPACE -> eventing's file for each."""


def reference(name: str) -> str:
    """The image reference the node agent's image map knows the test image `name` by."""
    return f"kevents.local/rekt/{name}"


def link_images(build: pathlib.Path, bin_dir: pathlib.Path) -> dict[str, str]:
    """Link each built test image into `bin_dir` as kevents-rekt-<name>; answer the images
    file's content (package -> image reference)."""
    for name in IMAGES.values():
        link = bin_dir / f"kevents-rekt-{name}"
        target = build / "bin" / name
        if not target.is_file():
            raise SystemExit(f"hack/rekt: {target} is missing; hack/build-rekt builds it")
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return {package: reference(name) for package, name in IMAGES.items()}


async def ensure_config_maps(
    api: kubeapi.KubeApi, config_dir: pathlib.Path, namespace: str
) -> list[str]:
    """Create the suite's config maps that `namespace` lacks; answer the names created."""
    created = []
    for name, filename in SUITE_CONFIG.items():
        if await api.get_or_none(CONFIG_MAPS, namespace, name) is not None:
            continue
        doc: Any = yaml.safe_load((config_dir / filename).read_text())
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": doc["metadata"].get("labels") or {}},
            "data": doc.get("data") or {},
        }  # fmt: skip
        try:
            await api.create(CONFIG_MAPS, namespace, body)
        except kubeapi.Conflict:  # created meanwhile (AlreadyExists is a 409)
            continue
        created.append(name)
    return created


async def installed(api: kubeapi.KubeApi, namespace: str) -> bool:
    deployments = kubeapi.Resource("apps", "v1", "deployments")
    return await api.get_or_none(deployments, namespace, "kevents-controller") is not None


@dataclasses.dataclass
class Test:
    """One test or subtest of the run: its outcome and output."""

    name: str
    action: str = "run"
    """run (not finished), pass, fail or skip."""
    elapsed: float = 0.0
    output: list[str] = dataclasses.field(default_factory=list)


_SOURCE_LINE = re.compile(r"^\s+([\w.-]+\.go):\d+: (.*)$")
_FAILURE_WORDS = re.compile(
    r"fail|error|timed out|did not|unexpected|expected|want|mismatch|panic|refused|invalid",
    re.IGNORECASE,
)
"""t.Error/t.Fatal and t.Log lines look alike in `go test` output (`file.go:NN: text`); a
step's failure says one of these (`failed to create resource ...`, `... did not become
ready, timed out ...`, `expected ... got ...`), its polling logs do not."""
_CONDITION = re.compile(r"condition is (\{.*\})\s*$")


def _condition(line: str) -> str:
    """`reason: message` of a reconciler-test `.../name condition is {json}` log line."""
    m = _CONDITION.search(line)
    if not m:
        return ""
    try:
        c = json.loads(m.group(1))
    except ValueError:
        return ""
    kind, status, reason = c.get("type", ""), c.get("status", ""), c.get("reason", "")
    return f"{kind} {status} {reason}: {c.get('message', '')}"


@dataclasses.dataclass
class Run:
    """A `go test -json` event stream, folded into its tests."""

    tests: dict[str, Test] = dataclasses.field(default_factory=dict)
    order: list[str] = dataclasses.field(default_factory=list)
    """Top-level tests in the order they finished."""
    other: list[str] = dataclasses.field(default_factory=list)
    """Output outside any test (a panic, a timeout, the binary's own errors)."""
    logs: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """Each top-level test's output and its subtests', in the order it was written."""

    def feed(self, line: str) -> Test | None:
        """Take one line; answer the top-level test it finished, if any."""
        try:
            event = json.loads(line)
        except ValueError:
            self.other.append(line.rstrip("\n"))
            return None
        name = event.get("Test")
        action = event.get("Action")
        if not name:
            if action == "output":
                self.other.append(str(event.get("Output", "")).rstrip("\n"))
            return None
        test = self.tests.setdefault(name, Test(name))
        if action == "output":
            text = str(event.get("Output", "")).rstrip("\n")
            test.output.append(text)
            self.logs.setdefault(name.split("/", 1)[0], []).append(text)
        elif action in ("pass", "fail", "skip"):
            test.action = action
            test.elapsed = float(event.get("Elapsed") or 0.0)
            if "/" not in name:
                self.order.append(name)
                return test
        return None

    def top(self) -> list[Test]:
        return [t for n, t in self.tests.items() if "/" not in n]

    def failed_leaves(self, top: str) -> list[Test]:
        """The failed subtests of `top` with no failed subtest of their own (or `top`)."""
        failed = [
            t
            for n, t in self.tests.items()
            if (n == top or n.startswith(top + "/")) and t.action in ("fail", "run")
        ]
        names = {t.name for t in failed}
        leaves = [t for t in failed if not any(n.startswith(t.name + "/") for n in names)]
        return leaves or [self.tests[top]]

    def first_error(self, top: str) -> str:
        """The first line that reads as the failure of `top`'s first failed step, with the
        last condition the step saw when it waited for one."""
        leaves = self.failed_leaves(top)
        for leaf in leaves:
            condition = ""
            for line in leaf.output:
                condition = _condition(line) or condition
                m = _SOURCE_LINE.match(line)
                if m and _FAILURE_WORDS.search(m.group(2)) and not _condition(line):
                    found = f"{m.group(1)}: {m.group(2).strip()}"
                    return f"{found} (last: {condition})" if condition else found
        for leaf in leaves:
            for line in reversed(leaf.output):
                m = _SOURCE_LINE.match(line)
                if m:
                    return f"{m.group(1)}: {m.group(2).strip()}"
        if self.tests[top].action == "run":
            return "did not finish (the run ended or timed out first)"
        return "(no error line; see the log)"


def outcome_lines(run: Run) -> Iterable[str]:
    tests = sorted(run.top(), key=lambda t: t.name)
    for t in tests:
        if t.action == "fail" or t.action == "run":
            yield f"FAIL {t.name}: {run.first_error(t.name)}"
    passed = sum(t.action == "pass" for t in tests)
    failed = sum(t.action in ("fail", "run") for t in tests)
    skipped = [t.name for t in tests if t.action == "skip"]
    if skipped:
        yield f"skipped by the suite: {', '.join(skipped)}"
    if not tests and run.other:
        yield from run.other[-20:]
    yield f"{passed} passed, {failed} failed"


def command(
    build: pathlib.Path, images_file: pathlib.Path, regexp: str, parallel: int, timeout: str
) -> list[str]:
    return [
        "go", "tool", "test2json", "-t", "-p", "rekt",
        str(build / "rekt.test"), "-test.v=test2json", f"-test.run={regexp}",
        f"-test.parallel={parallel}", f"-test.timeout={timeout}", "-test.count=1",
        f"--images.producer.file={images_file}",
    ]  # fmt: skip


def write_logs(run: Run, folder: pathlib.Path) -> None:
    for t in run.top():
        if t.action not in ("fail", "run"):
            continue
        (folder / f"{t.name}.log").write_text("\n".join(run.logs.get(t.name, [])) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/rekt", description=__doc__.splitlines()[0])
    parser.add_argument("build", type=pathlib.Path, help="the folder hack/build-rekt printed")
    parser.add_argument("regexp", nargs="?", default="", help="go test -run REGEXP")
    parser.add_argument("--parallel", type=int, default=int(os.environ.get("REKT_PARALLEL", 4)))
    parser.add_argument("--timeout", default=os.environ.get("REKT_TIMEOUT", "60m"))
    parser.add_argument(
        "--kubeconfig", type=pathlib.Path, required=True,
        help="the local cluster's (python -m hack.localcluster kubeconfig)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    regexp = args.regexp or os.environ.get("REKT_RUN", "") or CI_SELECTION
    build: pathlib.Path = args.build.resolve()

    STATE.mkdir(parents=True, exist_ok=True)
    for old in STATE.glob("*.log"):
        old.unlink()
    images_file = STATE / "images.yaml"
    images_file.write_text(yaml.safe_dump(link_images(build, pathlib.Path(sys.executable).parent)))

    async def prepare() -> tuple[bool, list[str]]:
        async with kubeconfig.connect(args.kubeconfig) as api:
            if not await installed(api, SYSTEM_NAMESPACE):
                return False, []
            return True, await ensure_config_maps(api, build / "config", SYSTEM_NAMESPACE)

    ok, created = asyncio.run(prepare())
    if not ok:
        print(f"hack/rekt: kevents is not installed in {SYSTEM_NAMESPACE}; run hack/up first")
        return 2
    if created:
        print(f"created in {SYSTEM_NAMESPACE}: {', '.join(created)}", flush=True)

    env = {**os.environ, "KUBECONFIG": str(args.kubeconfig),
           "SYSTEM_NAMESPACE": SYSTEM_NAMESPACE}  # fmt: skip
    argv_ = command(build, images_file, regexp, args.parallel, args.timeout)
    print(f"running rekt: -run '{regexp}' (events in {STATE / 'run.jsonl'})", flush=True)
    run = Run()
    with (
        (STATE / "run.jsonl").open("w") as log,
        subprocess.Popen(
            argv_, cwd=build, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            finished = run.feed(line)
            if finished is not None:
                word = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[finished.action]
                print(f"{word} {finished.name} ({finished.elapsed:.0f}s)", flush=True)
    write_logs(run, STATE)
    lines = list(outcome_lines(run))
    print("\n".join(lines), flush=True)
    failed = any(t.action in ("fail", "run") for t in run.top())
    return 1 if failed or not run.top() else 0


SMOKE = [
    "TestSmoke_Broker", "TestSmoke_Trigger", "TestSmoke_PingSource", "TestSmoke_ContainerSource",
    "TestSmoke_ApiServerSource", "TestSmoke_SinkBinding", "TestSmoke_Channel",
    "TestSmoke_ChannelImpl", "TestSmoke_ChannelWithSubscription",
    "TestSmoke_ChannelImplWithSubscription", "TestSmoke_Parallel", "TestSmoke_ParallelDelivery",
    "TestSmoke_Parallel_with_no_filter", "TestSmoke_Sequence", "TestSmoke_SequenceDelivery",
]  # fmt: skip
"""Every smoke test of the suite: each names a kind kevents serves."""

FEATURES = [
    # sources
    "TestPingSourceWithSinkRef", "TestPingSourceWithSinkURI", "TestPingSourceWithCloudEventData",
    "TestPingSourceWithSecondsInSchedule",
    "TestContainerSourceWithSinkRef", "TestContainerSourceWithSinkURI",
    "TestContainerSourceWithCloudEventOverrides", "TestContainerSourceWithArgs",
    "TestApiServerSourceValidationWebhookConfigurationOnCreate",
    "TestApiServerSourceValidationWebhookConfigurationOnUpdate",
    "TestApiServerSourceDataPlane_SinkTypes", "TestApiServerSourceDataPlane_EventModes",
    "TestApiServerSourceDataPlane_ResourceMatching", "TestApiServerSourceDataPlane_EventsRetries",
    "TestApiServerSourceDataPlane_MultipleNamespaces",
    "TestApiServerSourceDataPlane_MultipleNamespacesEmptySelector",
    "TestApiServerSourceDeployment",
    # SinkBinding
    "TestSinkBindingV1Deployment", "TestSinkBindingV1Job",
    # channels and subscriptions
    "TestChannelConformance", "TestChannelChain", "TestChannelDeadLetterSink",
    "TestChannelAsyncHandler", "TestGenericChannelDeadLetterSink",
    "TestEventTransformationForSubscriptionV1", "TestBinaryEventForChannel",
    "TestStructuredEventForChannel", "TestChannelPreferHeaderCheck",
    "TestChannelDeadLetterSinkExtensions",
    # broker
    "TestBrokerWithManyTriggers", "TestBrokerWorkFlowWithTransformation", "TestBrokerAsMiddleware",
    "TestBrokerWithDLQ", "TestBrokerWithFlakyDLQ", "TestBrokerConformance",
    "TestBrokerDefaultDelivery", "TestBrokerPreferHeaderCheck", "TestBrokerRedelivery",
    "TestBrokerPropagatesMetadata", "TestBrokerDeadLetterSinkExtensions",
    "TestBrokerDeliverLongMessage", "TestBrokerDeliverLongResponseMessage",
    "TestMTChannelBrokerNewTriggerFilters",
    # trigger
    "TestTriggerDefaulting", "TestTriggerWithDLS", "TestMultiTriggerTopology",
    "TestTriggerDependencyAnnotation", "TestTriggerDeliveryFormat",
    # delivery timeout (channels' subscriptions, triggers)
    "TestDeliveryTimeout", "TestBrokerTriggerWithDeliveryTimeout",
    # flows
    "TestParallel", "TestSequence",
]  # fmt: skip
"""The feature tests of the kinds kevents serves. Left out (README, "Knative's own
end-to-end suite"): TLS, OIDC and AuthZ variants, EventTransform, IntegrationSink/Source,
JobSink, cross-namespace references, and the ApiServerSource feature-flag tests."""

CI_SELECTION = "^(" + "|".join(SMOKE + FEATURES) + ")$"


if __name__ == "__main__":
    sys.exit(main())
