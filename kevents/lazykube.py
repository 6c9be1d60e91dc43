"""kubernetes_asyncio without its generated API and model classes until one is used.

kevents talks to the API server through `kevents.kubeapi` on its own transport: in a pod it
imports nothing of kubernetes_asyncio; out of a cluster it reads the kubeconfig with
kubernetes_asyncio's loader into a `Configuration` (tests and tools also use its typed
clients). Importing the package, though, runs its `__init__`s, which
import every generated `*Api` class and every model (~1,200 modules): 38 MiB of RSS in each
deployable, a third of the dispatcher's (measured with `python -X importtime` and VmRSS after
import; issue 24). Likewise `kubernetes_asyncio.config` imports the kubeconfig loader (YAML,
exec and OIDC plugins: 1.0 MiB) that a pod, configured in-cluster, never uses.
`install()`, called by `kevents/__init__.py` before anything imports kubernetes_asyncio,
puts light package modules in place of `kubernetes_asyncio`, `kubernetes_asyncio.client`,
`kubernetes_asyncio.client.models` and `kubernetes_asyncio.config`: their submodules import
as usual, and the first use of a name a light package does not have (`client.V1Pod`,
`client.CoreV1Api`, a model the ApiClient deserializes) runs the real `__init__` into it, so
code using the generated classes works unchanged and pays for them only then.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

PACKAGES = (
    "kubernetes_asyncio",
    "kubernetes_asyncio.client",
    "kubernetes_asyncio.client.models",
    "kubernetes_asyncio.config",
)
_LIGHT = {
    ("kubernetes_asyncio.client", "Configuration"): "kubernetes_asyncio.client.configuration",
    ("kubernetes_asyncio.client", "ApiClient"): "kubernetes_asyncio.client.api_client",
    ("kubernetes_asyncio.client", "ApiException"): "kubernetes_asyncio.client.exceptions",
    ("kubernetes_asyncio.client", "ApiValueError"): "kubernetes_asyncio.client.exceptions",
    ("kubernetes_asyncio.client", "ApiTypeError"): "kubernetes_asyncio.client.exceptions",
    ("kubernetes_asyncio.client", "ApiKeyError"): "kubernetes_asyncio.client.exceptions",
    ("kubernetes_asyncio.client", "OpenApiException"): "kubernetes_asyncio.client.exceptions",
    ("kubernetes_asyncio.config", "ConfigException"): "kubernetes_asyncio.config.config_exception",
    ("kubernetes_asyncio.config", "load_incluster_config"): (
        "kubernetes_asyncio.config.incluster_config"
    ),
    ("kubernetes_asyncio.config", "load_kube_config"): "kubernetes_asyncio.config.kube_config",
}
"""Names served from their own submodule, without the package's `__init__`."""


class _LightPackage(types.ModuleType):
    """A package whose `__init__` runs on the first use of a name it does not have."""

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        light = _LIGHT.get((self.__name__, name))
        if light is not None:
            value = getattr(importlib.import_module(light), name)
            setattr(self, name, value)
            return value
        if importlib.util.find_spec(f"{self.__name__}.{name}") is not None:
            return importlib.import_module(f"{self.__name__}.{name}")  # sets the attribute
        self._load()
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None

    def _load(self) -> None:
        """Run the real `__init__` into this module, once."""
        if self.__dict__.get("_kevents_loaded"):
            return
        self.__dict__["_kevents_loaded"] = True
        spec = self.__spec__
        assert spec is not None and spec.origin is not None
        with open(spec.origin, encoding="utf-8") as source:
            code = compile(source.read(), spec.origin, "exec")
        exec(code, self.__dict__)


def install() -> None:
    """Put the light packages in place, unless kubernetes_asyncio is already imported."""
    if PACKAGES[0] in sys.modules:
        return
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.submodule_search_locations is None:
            return  # not installed, or not a package: leave the import system alone
        module = _LightPackage(name)
        module.__spec__ = spec
        module.__file__ = spec.origin
        module.__path__ = list(spec.submodule_search_locations)
        module.__package__ = name
        module.__loader__ = spec.loader
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
