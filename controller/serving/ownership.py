"""Whether this controller reconciles `serving.knative.dev` objects (setting `SERVING`).

A cluster runs either kevents' minimal Knative Service (`manifests/serving/`) or the real
Knative Serving, never both: the CRDs share their names. `auto` (default) reconciles them
only when the installed `services.serving.knative.dev` CRD is ours, which carries the label
`serving.kevents.dev/implementation: kevents`; `enabled` always, `disabled` never. The CRD
is read once at start: installing or removing `manifests/serving/` takes effect when the
controller restarts.
"""

from __future__ import annotations

import enum
import logging

from kevents import kubeapi

logger = logging.getLogger(__name__)

CRDS = kubeapi.Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", False)
SERVICE_CRD = "services.serving.knative.dev"
LABEL = "serving.kevents.dev/implementation"
OURS = "kevents"


class Mode(enum.Enum):
    AUTO = "auto"
    ENABLED = "enabled"
    DISABLED = "disabled"


def is_ours(crd: kubeapi.Json | None) -> bool:
    return crd is not None and (crd["metadata"].get("labels") or {}).get(LABEL) == OURS


async def enabled(api: kubeapi.KubeApi, mode: Mode) -> bool:
    if mode is not Mode.AUTO:
        return mode is Mode.ENABLED
    try:
        crd = await api.get_or_none(CRDS, None, SERVICE_CRD)
    except kubeapi.Forbidden:
        logger.info(
            "Not reconciling Knative Services: the controller may not read the CRD %s "
            "(manifests/serving/ grants it).", SERVICE_CRD,
        )  # fmt: skip
        return False
    if crd is None:
        logger.info("Not reconciling Knative Services: the CRD %s is not installed.", SERVICE_CRD)
        return False
    if not is_ours(crd):
        logger.info(
            "Not reconciling Knative Services: the CRD %s belongs to another implementation "
            "(Knative Serving).", SERVICE_CRD,
        )  # fmt: skip
        return False
    logger.info("Reconciling Knative Services: the CRD %s is kevents'.", SERVICE_CRD)
    return True
