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

from controller import availability, context
from controller.framework import children, conditions, lifecycle, sinks
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


class Reconciler(lifecycle.Kind):
    kind = KIND
    resource = GITHUBSOURCES
    condition_set = CONDITION_SET
    finalizer = FINALIZER

    def __init__(self, ctx: context.Context, config: Callable[[], adapter.Config]) -> None:
        self.api = ctx.api
        self.config = config
        self.hooks = webhooks.Webhooks()

    async def reconcile(self, source: kubeapi.Json, state: lifecycle.State) -> None:
        spec = source.get("spec") or {}
        old_id = (source.get("status") or {}).get("webhookIDKey")
        if old_id:
            state.status["webhookIDKey"] = old_id
        repo, api_url = str(spec.get("ownerAndRepository", "")), str(spec.get("githubAPIURL") or "")
        events = list(spec.get("eventTypes") or [])
        state.status["ceAttributes"] = hook.ce_attributes(events, repo, api_url)
        # 1. Secrets.
        values = await self._secrets(source, state)
        # 2. Sink.
        address = await state.resolve(spec.get("sink"), SINK_PROVIDED)
        state.set_address("sink", address)
        # 3. Where the hook lives.
        try:
            where = hook.location(repo, api_url)
        except ValueError as exc:
            state.mark_false(WEBHOOK_CONFIGURED, "InvalidSpec", str(exc))
            raise state.fail(str(exc)) from exc
        # 4. The adapter (a hook made for another repository goes first).
        service = await self._adapter(source, address, values, state)
        # 5. The hook.
        url = hook.receiver_url(service["metadata"]["name"], source["metadata"]["namespace"],
                                spec.get("secure"))  # fmt: skip
        wanted = hook.Hook(url, tuple(events), values["secretToken"].text)
        hook_id = str(state.status.get("webhookIDKey") or "")
        token = values["accessToken"].text
        try:
            state.status["webhookIDKey"] = await self.hooks.ensure(
                state.key, token, where, wanted, hook_id
            )
        except githubapi.GitHubError as exc:
            reason, verb = (
                ("ReconciliationFailed", "update") if hook_id else ("CreationFailed", "create")
            )
            message = f"Failed to {verb} the webhook on GitHub: {exc}"
            state.mark_false(WEBHOOK_CONFIGURED, reason, message)
            raise state.fail(message) from exc
        state.mark_true(WEBHOOK_CONFIGURED)

    async def finalize(self, source: kubeapi.Json, state: lifecycle.State) -> None:
        """Delete the hook on GitHub; a missing Secret or hook is skipped, any other failure
        keeps the finalizer (WebhookConfigured False `DeletionFailed`)."""
        meta, spec = source["metadata"], source.get("spec") or {}
        hook_id = str(state.status.get("webhookIDKey") or "")
        if not hook_id:
            return
        try:
            ref = secrets.selector(spec, "accessToken")
            token = await secrets.read(self.api, meta["namespace"], ref)
            where = hook.location(str(spec.get("ownerAndRepository", "")),
                                  str(spec.get("githubAPIURL") or ""))  # fmt: skip
            await self.hooks.delete(state.key, token.text, where, hook_id)
        except (secrets.SecretError, ValueError) as exc:
            logger.warning("Could not delete webhook %s of GitHubSource %s, skipped: %s",
                           hook_id, state.key, exc)  # fmt: skip
        except githubapi.GitHubError as exc:
            message = f"Failed to delete the webhook on GitHub: {exc}"
            state.mark_false(WEBHOOK_CONFIGURED, "DeletionFailed", message)
            raise state.fail(message) from exc

    async def forget(self, key: str) -> None:
        self.hooks.forget(key)

    async def _secrets(
        self, source: kubeapi.Json, state: lifecycle.State
    ) -> dict[str, secrets.Value]:
        """The access and secret tokens (SecretsProvided)."""
        spec, values = source.get("spec") or {}, {}
        for field_name, reason in TOKENS:
            try:
                ref = secrets.selector(spec, field_name)
                values[field_name] = await secrets.read(
                    self.api, source["metadata"]["namespace"], ref
                )
            except secrets.SecretError as exc:
                state.mark_false(SECRETS_PROVIDED, reason, exc.message)
                raise state.fail(exc.message) from exc
        state.mark_true(SECRETS_PROVIDED)
        return values

    async def _adapter(
        self, source: kubeapi.Json, address: sinks.Address, values: dict[str, secrets.Value],
        state: lifecycle.State,
    ) -> kubeapi.Json:  # fmt: skip
        """Apply the receive adapter Deployment and Service (Deployed); a hook made for the
        repository or API URL the adapter had before is deleted first. Returns the Service."""
        meta, spec = source["metadata"], source.get("spec") or {}
        namespace, repo = meta["namespace"], str(spec.get("ownerAndRepository", ""))
        api_url = str(spec.get("githubAPIURL") or "")
        inputs = adapter.Inputs(
            name=meta["name"], namespace=namespace, uid=meta["uid"], sink=address,
            owner_and_repository=repo, event_types=list(spec.get("eventTypes") or []),
            api_url=api_url, secret_token=secrets.selector(spec, "secretToken"),
            secret_version=values["secretToken"].resource_version,
            service_account=str(spec.get("serviceAccountName") or ""),
            ce_overrides=spec.get("ceOverrides"),
        )  # fmt: skip
        desired = adapter.deployment(inputs, self.config())
        existing = await self._owned(adapter.DEPLOYMENTS, desired, source, state)
        before = adapter.previous(existing)
        hook_id = str(state.status.get("webhookIDKey") or "")
        if hook_id and before is not None and before != (repo, api_url):
            await self._relocate(state, values["accessToken"].text, before, hook_id)
            state.status.pop("webhookIDKey", None)
            self.hooks.forget(state.key)
        applied = await self.api.apply(adapter.DEPLOYMENTS, namespace, desired, FIELD_MANAGER)
        service = adapter.service(inputs)
        await self._owned(adapter.SERVICES, service, source, state)
        await self.api.apply(adapter.SERVICES, namespace, service, FIELD_MANAGER)
        if existing is None:
            logger.info("Created the receive adapter %s for GitHubSource %s.",
                        desired["metadata"]["name"], state.key)  # fmt: skip
        state.conditions = availability.propagate(state.conditions, DEPLOYED, applied)
        return service

    async def _relocate(
        self, state: lifecycle.State, token: str, before: tuple[str, str], hook_id: str
    ) -> None:
        """Delete the hook made for the previous repository/API URL. A refusal (4xx: gone,
        no access any more) is logged and left; no answer or a 5xx is retried."""
        key = state.key
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
            state.mark_false(WEBHOOK_CONFIGURED, "ReconciliationFailed", message)
            raise state.fail(message) from exc

    async def _owned(
        self,
        resource: kubeapi.Resource,
        desired: kubeapi.Json,
        owner: kubeapi.Json,
        state: lifecycle.State,
    ) -> kubeapi.Json | None:
        """The existing child named like `desired`, which must be this source's."""
        meta = desired["metadata"]
        existing = await self.api.get_or_none(resource, meta["namespace"], meta["name"])
        children.refuse_unowned(existing, owner, DEPLOYED, state)
        return existing
