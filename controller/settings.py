"""The controller's settings, read from the environment once (`kevents.settings.EnvReader`)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from kevents import settings


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    system_namespace: str
    """SYSTEM_NAMESPACE: where the controller runs, its Lease and config-* ConfigMaps live
    (Knative's `knative-eventing`; ours is `kevents-system`)."""
    apiserver_adapter_image: str
    """APISERVER_RA_IMAGE: image of the ApiServerSource receive adapter (Knative's name)."""
    ping_adapter_image: str
    """PING_RA_IMAGE: image of the shared PingSource adapter Deployment
    (`pingsource-mt-adapter`), created by the controller when missing."""
    github_adapter_image: str
    """GH_RA_IMAGE: image of the per-source GitHubSource receive adapter (Knative's name)."""
    kafka_adapter_image: str
    """KAFKA_RA_IMAGE: image of the per-source KafkaSource receive adapter."""
    identity: str
    """POD_NAME (downward API): this replica's name in the Lease; hostname + random suffix
    when unset so two local runs never share an identity."""
    lease_name: str
    """LEASE_NAME: the leader election Lease (default `kevents-controller`)."""
    workers: int
    """CONTROLLER_WORKERS: concurrent reconciles per kind (default 4: SubjectAccessReviews
    and applies are I/O-bound; more workers mostly add apiserver load)."""
    resync_seconds: float
    """RESYNC_SECONDS: re-reconcile every object this often even without events (default
    600 s), a safety net for missed events; level-based reconciles make it cheap."""
    config_recheck_seconds: float
    """BROKER_CONFIG_RECHECK_SECONDS: how often a Broker's `spec.config` ConfigMap outside the
    system namespace is read again (default 30 s: the controller may only get those by name,
    so polling one GET per such Broker is what notices one appearing or deleted)."""
    metrics_port: int
    """METRICS_PORT (9090): Prometheus `/metrics`."""
    probes_port: int
    """PROBES_PORT (8080): `/health` and `/readiness`."""
    webhook_port: int
    """WEBHOOK_PORT (8443): the admission webhooks (HTTPS: SinkBinding, validation and
    defaulting of our kinds), the target of the `kevents-webhook` Service."""
    webhook_configuration: str
    """WEBHOOK_CONFIGURATION: the MutatingWebhookConfiguration whose caBundle the controller
    keeps (default `sinkbindings.webhook.sources.knative.dev`, Knative's name)."""
    validation_configuration: str
    """WEBHOOK_VALIDATION_CONFIGURATION: the ValidatingWebhookConfiguration of our kinds whose
    caBundle the controller keeps (default `validation.webhook.kevents.knative.dev`)."""
    defaulting_configuration: str
    """WEBHOOK_DEFAULTING_CONFIGURATION: the MutatingWebhookConfiguration writing our kinds'
    defaults whose caBundle the controller keeps (default `webhook.kevents.knative.dev`)."""
    sink_binding_selection_mode: str
    """SINK_BINDING_SELECTION_MODE (Knative's name and values): `exclusion` (default, as
    Knative) binds subjects at admission in every namespace not labelled
    `bindings.knative.dev/exclude: "true"`; `inclusion` only in namespaces (or objects)
    labelled `bindings.knative.dev/include: "true"`."""
    serving: str
    """SERVING: `auto` (default) reconciles `serving.knative.dev` Services, Configurations
    and Revisions only when the installed Service CRD is kevents' (`manifests/serving/`), so a
    cluster running the real Knative Serving is left to it; `enabled` always; `disabled`
    never (`controller/serving/ownership.py`)."""
    log_level: str
    log_format: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ControllerSettings:
        env = settings.EnvReader(environ)
        out = cls(
            system_namespace=env.string("SYSTEM_NAMESPACE", "kevents-system"),
            apiserver_adapter_image=env.string(
                "APISERVER_RA_IMAGE", "kevents/apiserver-source:latest"
            ),
            ping_adapter_image=env.string("PING_RA_IMAGE", "kevents/ping-source:latest"),
            github_adapter_image=env.string("GH_RA_IMAGE", "kevents/github-source:latest"),
            kafka_adapter_image=env.string("KAFKA_RA_IMAGE", "kevents/kafka-source:latest"),
            identity=env.string(
                "POD_NAME", f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            ),
            lease_name=env.string("LEASE_NAME", "kevents-controller"),
            workers=env.integer("CONTROLLER_WORKERS", 4, minimum=1, maximum=64),
            resync_seconds=env.number("RESYNC_SECONDS", 600.0, minimum=1.0, maximum=86400.0),
            config_recheck_seconds=env.number(
                "BROKER_CONFIG_RECHECK_SECONDS", 30.0, minimum=1.0, maximum=86400.0
            ),
            metrics_port=env.integer("METRICS_PORT", 9090, minimum=0, maximum=65535),
            probes_port=env.integer("PROBES_PORT", 8080, minimum=0, maximum=65535),
            webhook_port=env.integer("WEBHOOK_PORT", 8443, minimum=0, maximum=65535),
            webhook_configuration=env.string(
                "WEBHOOK_CONFIGURATION", "sinkbindings.webhook.sources.knative.dev"
            ),
            validation_configuration=env.string(
                "WEBHOOK_VALIDATION_CONFIGURATION", "validation.webhook.kevents.knative.dev"
            ),
            defaulting_configuration=env.string(
                "WEBHOOK_DEFAULTING_CONFIGURATION", "webhook.kevents.knative.dev"
            ),
            sink_binding_selection_mode=env.choice(
                "SINK_BINDING_SELECTION_MODE", "exclusion", ("exclusion", "inclusion")
            ),
            serving=env.choice("SERVING", "auto", ("auto", "enabled", "disabled")),
            log_level=env.choice("LOG_LEVEL", "INFO", settings.LOG_LEVELS, upper=True),
            log_format=env.choice("LOG_FORMAT", "json", settings.LOG_FORMATS),
        )
        env.check()
        return out
