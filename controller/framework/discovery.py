"""Kind -> resource collection via the apiserver's discovery documents.

Plurals come from discovery, never from string rules: `meta.UnsafeGuessKindToResource`
turns kind `Events` into `eventses` (kubearchive/kubearchive#126) and cannot know
irregular plurals of custom resources. Answers are cached per group/version; a miss
re-reads that group/version once (a CRD installed later becomes known).
"""

from __future__ import annotations

import logging

from kevents import kubeapi

logger = logging.getLogger(__name__)


class UnknownKind(LookupError):
    """The apiserver serves no such kind in that apiVersion."""

    def __init__(self, api_version: str, kind: str) -> None:
        self.api_version = api_version
        self.kind = kind
        super().__init__(f'the API server does not serve kind "{kind}" in "{api_version}"')


def split_api_version(api_version: str) -> tuple[str, str]:
    """ "apps/v1" -> ("apps", "v1"); "v1" -> ("", "v1")."""
    group, _, version = api_version.rpartition("/")
    return group, version


class Discovery:
    def __init__(self, api: kubeapi.KubeApi) -> None:
        self.api = api
        self._cache: dict[str, dict[str, kubeapi.Resource]] = {}

    async def resource_for(self, api_version: str, kind: str) -> kubeapi.Resource:
        kinds = self._cache.get(api_version)
        if kinds is None or kind not in kinds:
            kinds = await self._load(api_version)
        found = kinds.get(kind)
        if found is None:
            raise UnknownKind(api_version, kind)
        return found

    async def _load(self, api_version: str) -> dict[str, kubeapi.Resource]:
        group, version = split_api_version(api_version)
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            doc = await self.api.request("GET", path)
        except kubeapi.NotFound:
            doc = {}
        kinds: dict[str, kubeapi.Resource] = {}
        for item in doc.get("resources", []):
            name = str(item.get("name", ""))
            if "/" in name:  # subresources such as pods/status
                continue
            kinds[str(item.get("kind", ""))] = kubeapi.Resource(
                group, version, name, bool(item.get("namespaced", True))
            )
        self._cache[api_version] = kinds
        return kinds
