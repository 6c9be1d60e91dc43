"""The hook's lifecycle on GitHub: create, update, adopt, delete, with a memory of writes.

`ensure` sends nothing when what the hook should be equals what this process last wrote
(`Hook.digest`, kept in memory: a healthy source's resync costs no GitHub request; after a
restart each hook is PATCHed once, which also repairs edits made on GitHub). A PATCH answered
404 (the hook was deleted on GitHub) creates it again; a create answered 422 (GitHub's
"Hook already exists": a hook delivering to our URL whose id a failed status write lost)
adopts that hook. `delete` treats 404 as done. Log lines name hook ids and repositories,
never a token or the secret.
"""

from __future__ import annotations

import logging

from controller.githubsource import githubapi, hook

logger = logging.getLogger(__name__)


class Webhooks:
    def __init__(self) -> None:
        self.written: dict[str, str] = {}
        """Source key -> `Hook.digest` of what this process last wrote to GitHub."""

    def forget(self, key: str) -> None:
        self.written.pop(key, None)

    async def ensure(
        self, key: str, token: str, where: hook.Location, wanted: hook.Hook, hook_id: str
    ) -> str:
        """Make GitHub hold `wanted`; returns the hook's id."""
        if hook_id and self.written.get(key) == wanted.digest(where, hook_id):
            return hook_id
        async with githubapi.Client(token) as github:
            if hook_id:
                try:
                    await github.update(where, hook_id, wanted)
                    logger.info("Updated webhook %s on %s for GitHubSource %s.",
                                hook_id, where.describe(), key)  # fmt: skip
                except githubapi.GitHubError as exc:
                    if not exc.not_found:
                        raise
                    logger.warning("Webhook %s is gone from %s; creating it again for "
                                   "GitHubSource %s.", hook_id, where.describe(), key)  # fmt: skip
                    hook_id = await self._create(github, key, where, wanted)
            else:
                hook_id = await self._create(github, key, where, wanted)
        self.written[key] = wanted.digest(where, hook_id)
        return hook_id

    async def _create(
        self, github: githubapi.Client, key: str, where: hook.Location, wanted: hook.Hook
    ) -> str:
        try:
            hook_id = await github.create(where, wanted)
        except githubapi.GitHubError as exc:
            if exc.status != 422:
                raise
            try:
                hook_id = await github.find(where, wanted.url) or ""
            except githubapi.GitHubError:
                hook_id = ""
            if not hook_id:
                raise
            await github.update(where, hook_id, wanted)
            logger.info("Adopted existing webhook %s on %s for GitHubSource %s.",
                        hook_id, where.describe(), key)  # fmt: skip
            return hook_id
        logger.info("Created webhook %s on %s for GitHubSource %s.",
                    hook_id, where.describe(), key)  # fmt: skip
        return hook_id

    async def delete(self, key: str, token: str, where: hook.Location, hook_id: str) -> None:
        async with githubapi.Client(token) as github:
            try:
                await github.delete(where, hook_id)
            except githubapi.GitHubError as exc:
                if not exc.not_found:
                    raise
                logger.info("Webhook %s of GitHubSource %s was already gone from %s.",
                            hook_id, key, where.describe())  # fmt: skip
                return
        logger.info("Deleted webhook %s on %s for GitHubSource %s.",
                    hook_id, where.describe(), key)  # fmt: skip
