"""The webhook server: TLS with a certificate the controller makes, rotates and publishes as
the `caBundle` of every configuration it serves: the SinkBinding MutatingWebhookConfiguration
(`/sinkbindings`), and the validation (`/validate`) and defaulting (`/default`) of kevents'
own kinds (`controller/admission.py`), and the conversion of the legacy v1alpha1 versions
(`/convert`, `controller/conversion/`: caBundle into the CRDs' conversion webhook). Runs in
every replica (the Service may route to any), not only the leader.

Why the SinkBinding webhook fails open and the reconciler binds anyway
----------------------------------------------------------------------
Knative registers the SinkBinding webhook for every Deployment/StatefulSet/... of the
cluster with `failurePolicy: Fail`: while eventing-webhook is down nobody can create or
update a workload anywhere (knative/eventing#2350). kevents keeps Knative's selection
(`SINK_BINDING_SELECTION_MODE`, `exclusion` by default, `selection.py`: the controller writes
the mode's selectors into the configuration, as Knative's webhook does) so Knative's samples
work unchanged, and removes the danger (`manifests/500-webhook.yaml`):

- `failurePolicy: Ignore` as shipped: a webhook outage lets objects through unbound, and
  the reconciler (which patches every mutable subject itself, `reconciler.py`) binds them
  a moment later. Nothing is blocked; the price of an outage is one more rollout, and a Job
  admitted unbound during it is named on its SinkBinding (Ready False). A user who prefers
  "no pod ever starts without K_SINK" sets `failurePolicy: Fail` on the configuration (as in
  Knative); the controller only ever patches `caBundle` and the selectors' include/exclude
  expressions, so that choice survives.
- `kube-system` and `kevents-system` are never reviewed; `bindings.knative.dev/exclude:
  "true"` on a namespace or an object always keeps it out. In inclusion mode only namespaces
  (or objects) labelled `bindings.knative.dev/include: "true"` reach us (#3806).
- Each review costs one namespaced LIST of SinkBindings (5 s bound); the apiserver lets the
  object in when the webhook does not answer within the configuration's timeout.
- The webhook is therefore an optimisation for mutable workloads (a new Deployment starts
  with its env, one rollout instead of two, apache/camel-k#1945), plus the only way to bind
  Jobs and Pods, whose pod specs are immutable after creation.

Certificates: a CA and serving certificate (`certificates.py`) live in a Secret shared by
the replicas. Each replica checks every `check_interval` seconds: when the set is missing or
less than `renew_before` of its life is left, one replica writes a new set (a
resourceVersion conflict means another replica was first; the winner's set is used). The
`caBundle` is the current CA followed by the previous one while that is still valid, so
replicas still serving the previous certificate stay trusted until they reload it. A new
certificate is loaded into the live SSL context: no restart, no dropped listener.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controller import admission as kinds_admission
from controller.conversion import kinds as conversion_kinds
from controller.conversion import review as conversion
from controller.sinkbinding import admission, certificates, selection
from kevents import kubeapi, kubeevents, webserver

logger = logging.getLogger(__name__)

SECRETS = kubeapi.Resource("", "v1", "secrets")
CONFIGURATIONS = kubeapi.Resource(
    "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", namespaced=False
)
VALIDATING_CONFIGURATIONS = kubeapi.Resource(
    "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", namespaced=False
)
CRDS = kubeapi.Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
CONFIGURATION = "sinkbindings.webhook.sources.knative.dev"
VALIDATION = "validation.webhook.kevents.knative.dev"
"""The ValidatingWebhookConfiguration of kevents' kinds (`controller/admission.py`)."""
DEFAULTING = "webhook.kevents.knative.dev"
"""The MutatingWebhookConfiguration writing kevents' kinds' defaults."""
CONVERSION_CRDS = conversion_kinds.CRDS
"""The CRDs served at v1alpha1 through `/convert`."""
SERVICE = "kevents-webhook"
SECRET = "kevents-webhook-certs"


@dataclass(frozen=True, slots=True)
class Options:
    namespace: str
    """Where the Secret is kept and the Service lives (the system namespace)."""
    host: str = "0.0.0.0"
    port: int = 8443
    service: str = SERVICE
    secret: str = SECRET
    configuration: str = CONFIGURATION
    validation: str = VALIDATION
    defaulting: str = DEFAULTING
    conversion: Sequence[str] = ()
    """CRDs whose `spec.conversion.webhook.clientConfig.caBundle` is ours (`/convert`); the
    controller passes `CONVERSION_CRDS`, tests their own (CRDs are cluster-wide)."""
    selection_mode: selection.Mode = selection.Mode.EXCLUSION
    """Which namespaces/objects the SinkBinding configuration selects (`selection.py`)."""
    extra_hosts: Sequence[str] = field(default_factory=tuple)
    """More names/IPs for the certificate (127.0.0.1 when the apiserver calls a url)."""
    valid: datetime.timedelta = datetime.timedelta(days=7)
    renew_before: datetime.timedelta = datetime.timedelta(days=2)
    check_interval: float = 60.0


class Webhook:
    def __init__(
        self, api: kubeapi.KubeApi, options: Options, events: kubeevents.Emitter | None = None
    ) -> None:
        """`events`: Normal Events when a certificate is written (on its Secret) and when a
        caBundle is published (on the webhook configuration or CRD); None: not recorded."""
        self.api = api
        self.options = options
        self.events = events or kubeevents.Emitter(None, kubeevents.Source("webhook"))
        self.hosts = certificates.hosts_of(options.service, options.namespace, options.extra_hosts)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.bundle: certificates.Bundle | None = None
        self._missing_reported: set[str] = set()
        app = admission.make_app(api)
        kinds_admission.add_routes(app)
        conversion.add_routes(app)
        self.server = webserver.WebServer(
            app, host=options.host, port=options.port, name="webhook", ssl_context=self.context,
        )  # fmt: skip
        self.name = "webhook"

    @property
    def port(self) -> int:
        return self.server.port

    async def wait_serving(self) -> None:
        """Until the HTTPS server listens (deliberately not the runner's `wait_started`: a
        webhook without a certificate yet must not hold back the reconcilers)."""
        await self.server.wait_started()

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
                break
            except kubeapi.ApiError as exc:
                logger.warning(
                    "No webhook certificate yet (%s); retrying in %.0f s. Until then the "
                    "apiserver applies the webhook's failurePolicy.", exc,
                    self.options.check_interval,
                )  # fmt: skip
                await asyncio.sleep(self.options.check_interval)
        async with asyncio.TaskGroup() as group:
            group.create_task(self.server.run(), name="webhook server")
            while True:
                await asyncio.sleep(self.options.check_interval)
                try:
                    await self.refresh()
                except kubeapi.ApiError as exc:
                    logger.warning("Webhook certificate check failed (%s); retrying.", exc)

    async def refresh(self) -> None:
        """Make sure a good certificate is stored, served and published as caBundle."""
        bundle = await self._stored_or_new()
        if bundle != self.bundle:
            self._load(bundle)
            self.bundle = bundle
            logger.info("Serving the webhook certificate valid until %s.",
                        certificates.expiry(bundle))  # fmt: skip
        opts = self.options
        await self._publish(bundle.ca_cert, CONFIGURATIONS, opts.configuration)
        await self._publish(bundle.ca_cert, VALIDATING_CONFIGURATIONS, opts.validation)
        await self._publish(bundle.ca_cert, CONFIGURATIONS, opts.defaulting)
        for crd in opts.conversion:
            try:
                await self._publish_crd(bundle.ca_cert, crd)
            except kubeapi.ApiError as exc:  # admission must not wait on the legacy versions
                logger.warning("caBundle of CRD %s not published (%s); retrying.", crd, exc)

    async def _stored_or_new(self) -> certificates.Bundle:
        opts = self.options
        secret = await self.api.get_or_none(SECRETS, opts.namespace, opts.secret)
        data = {k: base64.b64decode(v) for k, v in ((secret or {}).get("data") or {}).items()}
        bundle = certificates.Bundle.from_data(data)
        now = datetime.datetime.now(datetime.UTC)
        why = certificates.due(bundle, self.hosts, opts.renew_before, now)
        if why is None and bundle is not None:
            return bundle
        fresh = certificates.generate(self.hosts, opts.valid, now)
        encoded = {k: base64.b64encode(v).decode() for k, v in fresh.to_data().items()}
        try:
            if secret is None:
                body = {
                    "metadata": {
                        "name": opts.secret,
                        "labels": {"app.kubernetes.io/part-of": "kevents"},
                    },
                    "type": "Opaque",
                    "data": encoded,
                }
                stored = await self.api.create(SECRETS, opts.namespace, body)
            else:
                rv = secret["metadata"]["resourceVersion"]
                body = {"metadata": {"resourceVersion": rv}, "data": encoded}
                stored = await self.api.merge_patch(SECRETS, opts.namespace, opts.secret, body)
        except kubeapi.Conflict:
            logger.info("Another replica wrote the webhook certificate first; using it.")
            return await self._stored_or_new()
        logger.info("Wrote a new webhook certificate: %s.", why)
        self.events.event(
            kubeevents.reference({**stored, "apiVersion": "v1", "kind": "Secret"}),
            kubeevents.NORMAL,
            "CertificateCreated" if secret is None else "CertificateRotated",
            f"Wrote a new webhook certificate valid until {certificates.expiry(fresh)}: {why}",
        )  # fmt: skip
        return fresh

    def _load(self, bundle: certificates.Bundle) -> None:
        with tempfile.TemporaryDirectory(prefix="kevents-webhook-") as folder:
            cert, key = os.path.join(folder, "tls.crt"), os.path.join(folder, "tls.key")
            with open(cert, "wb") as out:
                out.write(bundle.server_cert)
            with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
                out.write(bundle.server_key)
            self.context.load_cert_chain(cert, key)

    async def _publish(self, ca: bytes, resource: kubeapi.Resource, name: str) -> None:
        if not name:
            return
        what = "ValidatingWebhookConfiguration" if resource is VALIDATING_CONFIGURATIONS else (
            "MutatingWebhookConfiguration")  # fmt: skip
        config = await self.api.get_or_none(resource, None, name)
        if config is None:
            logger.log(
                logging.DEBUG if name in self._missing_reported else logging.WARNING,
                "%s %s not found; caBundle not set.", what, name,
            )  # fmt: skip
            self._missing_reported.add(name)
            return
        self._missing_reported.discard(name)
        webhooks = list(config.get("webhooks") or [])
        changed = False
        for hook in webhooks:
            client = hook.setdefault("clientConfig", {})
            old = base64.b64decode(client.get("caBundle") or "")
            bundle = base64.b64encode(ca_bundle(ca, old)).decode()
            if client.get("caBundle") != bundle:
                client["caBundle"], changed = bundle, True
        if resource is CONFIGURATIONS and name == self.options.configuration:
            mode = self.options.selection_mode
            if selection.apply(webhooks, mode):
                changed = True
                logger.info("SinkBinding webhook %s: %s mode selectors.", name, mode)
        if changed:
            rv = config["metadata"]["resourceVersion"]
            body = {"metadata": {"resourceVersion": rv}, "webhooks": webhooks}
            await self.api.merge_patch(resource, None, name, body)
            logger.info("Patched caBundle into %s %s.", what, name)
            self.events.event(
                kubeevents.reference({**config, "apiVersion": resource.api_version, "kind": what}),
                kubeevents.NORMAL, "WebhookRegistered",
                f"Published the webhook CA (caBundle) into {what} {name}.",
            )  # fmt: skip

    async def _publish_crd(self, ca: bytes, name: str) -> None:
        """The CA into a CRD's conversion webhook (only when its strategy is Webhook)."""
        crd = await self.api.get_or_none(CRDS, None, name)
        conversion_ = ((crd or {}).get("spec") or {}).get("conversion") or {}
        if crd is None or conversion_.get("strategy") != "Webhook":
            logger.log(
                logging.DEBUG if name in self._missing_reported else logging.WARNING,
                "CRD %s not found or not converted by webhook; caBundle not set.", name,
            )  # fmt: skip
            self._missing_reported.add(name)
            return
        self._missing_reported.discard(name)
        client = (conversion_.get("webhook") or {}).get("clientConfig") or {}
        old = base64.b64decode(client.get("caBundle") or "")
        bundle = base64.b64encode(ca_bundle(ca, old)).decode()
        if client.get("caBundle") == bundle:
            return
        body = {
            "metadata": {"resourceVersion": crd["metadata"]["resourceVersion"]},
            "spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": bundle}}}},
        }
        await self.api.merge_patch(CRDS, None, name, body)
        logger.info("Patched caBundle into the conversion webhook of CRD %s.", name)
        self.events.event(
            kubeevents.reference({**crd, "apiVersion": CRDS.api_version,
                                  "kind": "CustomResourceDefinition"}),
            kubeevents.NORMAL, "WebhookRegistered",
            f"Published the webhook CA (caBundle) into the conversion webhook of CRD {name}.",
        )  # fmt: skip


def ca_bundle(current: bytes, published: bytes) -> bytes:
    """`current` CA, then the newest other still-valid CA already published (if any)."""
    now = datetime.datetime.now(datetime.UTC)
    try:
        olds = x509.load_pem_x509_certificates(published) if published.strip() else []
    except ValueError:
        olds = []
    cur = x509.load_pem_x509_certificate(current)
    keep = [c for c in olds if c != cur and c.not_valid_after_utc > now]
    keep.sort(key=lambda c: c.not_valid_before_utc, reverse=True)
    extra = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in keep[:1])
    return current + extra
