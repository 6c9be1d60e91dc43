"""kubernetes_asyncio's generated classes are not loaded by a deployable that does not use
them (38 MiB of RSS), and still work when used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
loaded = lambda: sum(1 for m in sys.modules if m.startswith("kubernetes_asyncio"))
before = loaded()
pod_model = "kubernetes_asyncio.client.models.v1_pod" in sys.modules
from kubernetes_asyncio import client, config
light = (client.Configuration.__name__, client.ApiClient.__name__,
         callable(config.load_kube_config))
after_light = loaded()
pod = client.V1Pod(metadata=client.V1ObjectMeta(name="p")).metadata.name
print(json.dumps([before, pod_model, light, after_light, pod, loaded()]))
"""


@pytest.mark.parametrize(
    "deployable",
    ["dispatcher.service", "sources.apiserver.adapter"],
    ids=["dispatcher", "apiserversource-adapter"],
)
def test_generated_kubernetes_classes_load_only_when_used(deployable: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, deployable], check=True, capture_output=True, text=True
    ).stdout
    before, pod_model, light, after_light, pod, after_use = json.loads(out)
    assert not pod_model
    assert before < 50  # the client's plumbing, not its ~1,200 generated modules
    assert light == ["Configuration", "ApiClient", True]
    assert after_light < 50
    assert pod == "p"  # the generated classes work once used
    assert after_use > 500


IN_CLUSTER = """
import json, sys
import sources.apiserver.__main__
from kubernetes_asyncio import config
loader = config.load_incluster_config.__module__
kubeconfig_loaded = "kubernetes_asyncio.config.kube_config" in sys.modules
whole = callable(config.load_config)  # a name only the package's own __init__ defines
print(json.dumps([loader, kubeconfig_loaded, whole, config.load_kube_config.__module__]))
"""


def test_the_in_cluster_loader_does_not_load_the_kubeconfig_loader() -> None:
    out = subprocess.run(
        [sys.executable, "-c", IN_CLUSTER], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out) == [
        "kubernetes_asyncio.config.incluster_config",
        False,
        True,
        "kubernetes_asyncio.config.kube_config",
    ]
