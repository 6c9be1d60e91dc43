"""Level-based reconciler of GitHubSource (knative-extensions/eventing-github
`pkg/reconciler/source/githubsource.go`), its receive adapter a Deployment + Service.

1. Keep the finalizer `githubsources.sources.knative.dev` (upstream's generated reconciler's
   name) while the source lives: the hook on GitHub goes when the source goes.
2. Read the access token and the secret token: SecretsProvided, False with upstream's
   reasons `AccessTokenNotFound` / `SecretTokenNotFound` and a message naming Secret and key.
3. Resolve the sink (tracked) -> `status.sinkUri` (SinkProvided).
4. Apply the adapter Deployment and Service; Deployed follows the Deployment's Available.
   When the existing adapter was made for another repository or API URL, the hook created
   there is deleted first.
5. The hook (WebhookConfigured): created while `status.webhookIDKey` is empty, PATCHed when
   what it should be differs from what this process last wrote (so once after a restart),
   created again when GitHub no longer knows the id. A create answered 422 because a hook
   with our URL exists (its id lost to a failed status write) adopts that hook. Failures are
   False with upstream's reasons `CreationFailed` / `ReconciliationFailed` and GitHub's
   message, and the key is retried with backoff. Unlike upstream, the hook is registered
   without waiting for the adapter to be available: its URL is the Service's, known in
   advance, and a bad token shows at once; Ready still waits for Deployed.
6. `ceAttributes`: one per event type.

Deletion: the hook is deleted with the access token; a missing Secret or a hook GitHub no
longer has is skipped (upstream's WebhookDeletionSkipped); any other failure keeps the
finalizer, is retried, and shows in WebhookConfigured (`DeletionFailed`). The Deployment and
Service go by garbage collection. The tokens never reach a log line, the status or an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

from controller import (
    availability,
    conditions,
    context,
    dependencies,
    reconciling,
    sinks,
    statuses,
    tracking,
)
from controller.githubsource import adapter, githubapi, hook, secrets, webhooks
from kevents import kubeapi

logger = logging.getLogger(__name__)

GITHUBSOURCES = kubeapi.Resource("sources.knative.dev", "v1alpha1", "githubsources")
KIND = "GitHubSource"
FINALIZER = "githubsources.sources.knative.dev"
FIELD_MANAGER = "kevents-controller"
SECRETS_PROVIDED = "SecretsProvided"
SINK_PROVIDED = "SinkProvided"
DEPLOYED = "Deployed"
WEBHOOK_CONFIGURED = "WebhookConfigured"
CONDITION_SET = conditions.ConditionSet(
    (SECRETS_PROVIDED, SINK_PROVIDED, DEPLOYED, WEBHOOK_CONFIGURED)
)
TOKENS = (("accessToken", "AccessTokenNotFound"), ("secretToken", "SecretTokenNotFound"))
ReconcileError = reconciling.ReconcileError


class Reconciler:
    kind = KIND

    def __init__(
        self, ctx: context.Context, scope: tracking.Scope, config: Callable[[], adapter.Config]
    ) -> None:
        self.api = ctx.api
        self.kinds = ctx.kinds
        self.scope = scope
        self.config = config
        self.hooks = webhooks.Webhooks()

    async def reconcile(self, key: str) -> None:
        namespace, name = reconciling.split(key)
        source = await self.api.get_or_none(GITHUBSOURCES, namespace, name)
        if source is None:
            self._forget(key)
            return
        meta = source["metadata"]
        if meta.get("deletionTimestamp"):
            await self._finalize(key, source)
            return
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER not in finalizers:
            source = await self._set_finalizers(source, [*finalizers, FINALIZER])
        old = source.get("status") or {}
        status: kubeapi.Json = {"observedGeneration": source["metadata"].get("generation", 0)}
        if old.get("webhookIDKey"):
            status["webhookIDKey"] = old["webhookIDKey"]
        conds = CONDITION_SET.initial(old.get("conditions") or [])
        deps = dependencies.Dependencies(self.api, self.kinds, namespace)
        try:
            conds = await self._reconcile(key, source, status, conds, deps)
        except ReconcileError as failure:
            await self._write(source, status, failure.conditions)
            raise
        finally:
            self.scope.track_only(key, deps.targets)
        await self._write(source, status, conds)

    async def _reconcile(
        self, key: str, source: kubeapi.Json, status: kubeapi.Json,
        conds: conditions.Conditions, deps: dependencies.Dependencies,
    ) -> conditions.Conditions:  # fmt: skip
        meta, spec = source["metadata"], source.get("spec") or {}
        namespace, repo = meta["namespace"], str(spec.get("ownerAndRepository", ""))
        api_url, events = str(spec.get("githubAPIURL") or ""), list(spec.get("eventTypes") or [])
        status["ceAttributes"] = hook.ce_attributes(events, repo, api_url)

        # 1. Secrets.
        values: dict[str, secrets.Value] = {}
        for field_name, reason in TOKENS:
            try:
                ref = secrets.selector(spec, field_name)
                values[field_name] = await secrets.read(self.api, namespace, ref)
            except secrets.SecretError as exc:
                conds = conds.mark_false(SECRETS_PROVIDED, reason, exc.message)
                raise ReconcileError(f"{key}: {exc.message}", conds) from exc
        conds = conds.mark_true(SECRETS_PROVIDED)
        token = values["accessToken"].text

        # 2. Sink.
        try:
            address = await deps.resolve(cast(sinks.DestinationDict, spec.get("sink") or {}))
        except sinks.SinkError as exc:
            conds = conds.mark_false(SINK_PROVIDED, exc.reason, exc.message)
            raise ReconcileError(f"{key}: {exc.message}", conds) from exc
        status["sinkUri"] = address.url
        if address.ca_certs:
            status["sinkCACerts"] = address.ca_certs
        if address.audience:
            status["sinkAudience"] = address.audience
        conds = conds.mark_true(SINK_PROVIDED)

        # 3. Where the hook lives.
        try:
            where = hook.location(repo, api_url)
        except ValueError as exc:
            conds = conds.mark_false(WEBHOOK_CONFIGURED, "InvalidSpec", str(exc))
            raise ReconcileError(f"{key}: {exc}", conds) from exc

        # 4. The adapter (a hook made for another repository goes first).
        inputs = adapter.Inputs(
            name=meta["name"], namespace=namespace, uid=meta["uid"], sink=address,
            owner_and_repository=repo, event_types=events, api_url=api_url,
            secret_token=secrets.selector(spec, "secretToken"),
            secret_version=values["secretToken"].resource_version,
            service_account=str(spec.get("serviceAccountName") or ""),
            ce_overrides=spec.get("ceOverrides"),
        )  # fmt: skip
        desired = adapter.deployment(inputs, self.config())
        existing = await self._owned(key, adapter.DEPLOYMENTS, desired, meta["uid"], conds)
        before = adapter.previous(existing)
        hook_id = str(status.get("webhookIDKey") or "")
        if hook_id and before is not None and before != (repo, api_url):
            await self._relocate(key, token, before, hook_id, conds)
            status.pop("webhookIDKey", None)
            self.hooks.forget(key)
            hook_id = ""
        applied = await self.api.apply(adapter.DEPLOYMENTS, namespace, desired, FIELD_MANAGER)
        service = adapter.service(inputs)
        await self._owned(key, adapter.SERVICES, service, meta["uid"], conds)
        await self.api.apply(adapter.SERVICES, namespace, service, FIELD_MANAGER)
        if existing is None:
            logger.info("Created the receive adapter %s for GitHubSource %s.",
                        desired["metadata"]["name"], key)  # fmt: skip
        conds = availability.propagate(conds, DEPLOYED, applied)

        # 5. The hook.
        url = hook.receiver_url(service["metadata"]["name"], namespace, spec.get("secure"))
        wanted = hook.Hook(url, tuple(events), values["secretToken"].text)
        try:
            status["webhookIDKey"] = await self.hooks.ensure(key, token, where, wanted, hook_id)
        except githubapi.GitHubError as exc:
            reason, verb = (
                ("ReconciliationFailed", "update") if hook_id else ("CreationFailed", "create")
            )
            message = f"Failed to {verb} the webhook on GitHub: {exc}"
            conds = conds.mark_false(WEBHOOK_CONFIGURED, reason, message)
            raise ReconcileError(f"{key}: {message}", conds) from exc
        return conds.mark_true(WEBHOOK_CONFIGURED)

    async def _relocate(
        self, key: str, token: str, before: tuple[str, str], hook_id: str,
        conds: conditions.Conditions,
    ) -> None:  # fmt: skip
        """Delete the hook made for the previous repository/API URL. A refusal (4xx: gone,
        no access any more) is logged and left; no answer or a 5xx is retried."""
        try:
            await self.hooks.delete(key, token, hook.location(*before), hook_id)
        except ValueError as exc:
            logger.warning("Webhook %s of GitHubSource %s left in place: %s", hook_id, key, exc)
        except githubapi.GitHubError as exc:
            if 400 <= exc.status < 500:
                logger.warning("Webhook %s of GitHubSource %s may remain on %s: %s",
                               hook_id, key, before[0], exc)  # fmt: skip
                return
            message = f"Failed to delete the webhook on {before[0]}: {exc}"
            conds = conds.mark_false(WEBHOOK_CONFIGURED, "ReconciliationFailed", message)
            raise ReconcileError(f"{key}: {message}", conds) from exc

    async def _finalize(self, key: str, source: kubeapi.Json) -> None:
        meta, spec = source["metadata"], source.get("spec") or {}
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER not in finalizers:
            self._forget(key)
            return
        old = dict(source.get("status") or {})
        hook_id = str(old.get("webhookIDKey") or "")
        if hook_id:
            try:
                ref = secrets.selector(spec, "accessToken")
                token = await secrets.read(self.api, meta["namespace"], ref)
                where = hook.location(str(spec.get("ownerAndRepository", "")),
                                      str(spec.get("githubAPIURL") or ""))  # fmt: skip
                await self.hooks.delete(key, token.text, where, hook_id)
            except (secrets.SecretError, ValueError) as exc:
                logger.warning("Could not delete webhook %s of GitHubSource %s, skipped: %s",
                               hook_id, key, exc)  # fmt: skip
            except githubapi.GitHubError as exc:
                message = f"Failed to delete the webhook on GitHub: {exc}"
                conds = CONDITION_SET.initial(old.pop("conditions", None) or [])
                conds = conds.mark_false(WEBHOOK_CONFIGURED, "DeletionFailed", message)
                await self._write(source, old, conds)
                raise ReconcileError(f"{key}: {message}", conds) from exc
        await self._set_finalizers(source, [f for f in finalizers if f != FINALIZER])
        self._forget(key)

    async def _owned(
        self, key: str, resource: kubeapi.Resource, desired: kubeapi.Json, uid: str,
        conds: conditions.Conditions,
    ) -> kubeapi.Json | None:  # fmt: skip
        """The existing child named like `desired`, which must be this source's."""
        meta = desired["metadata"]
        existing = await self.api.get_or_none(resource, meta["namespace"], meta["name"])
        if existing is not None and not reconciling.controlled_by(existing, uid):
            what = desired["kind"]
            message = f"{what} '{meta['name']}' exists and is not owned by this GitHubSource."
            conds = conds.mark_false(DEPLOYED, f"{what}NotOwned", message)
            raise ReconcileError(f"{key}: {message}", conds)
        return existing

    async def _set_finalizers(self, source: kubeapi.Json, finalizers: list[str]) -> kubeapi.Json:
        meta = source["metadata"]
        return await self.api.merge_patch(
            GITHUBSOURCES, meta["namespace"], meta["name"],
            {"metadata": {"resourceVersion": meta["resourceVersion"], "finalizers": finalizers}},
        )  # fmt: skip

    async def _write(
        self, source: kubeapi.Json, status: kubeapi.Json, conds: conditions.Conditions
    ) -> None:
        await statuses.write(self.api, GITHUBSOURCES, self.kind, source, status, conds)

    def _forget(self, key: str) -> None:
        self.scope.forget(key)
        self.hooks.forget(key)
