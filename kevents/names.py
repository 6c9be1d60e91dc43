"""Names of the objects kevents derives from a user's object (pure): Knative's
`kmeta.ChildName`, byte for byte, so a child of a long-named parent fits Kubernetes' limits
and carries the same name it would under Knative.

`child_name(parent, suffix)` is `parent + suffix` while that fits in 63 characters (a
DNS-1123 label: the strictest name limit, a Service's). Longer, it keeps the start of the
parent and inserts the md5 (hex) of the parent before the suffix, 63 characters in all; when
the suffix alone leaves no room for that (a 36-character UID), it is the parent's first 31
characters, the md5 of parent + suffix, then as much of the suffix as fits, with trailing
non-alphanumerics removed (knative.dev/pkg `kmeta/names.go`).

Used for every derived name Knative derives with it: an InMemoryChannel's Service
`<channel>-kn-channel`, a Broker's trigger channel `<broker>-kne-trigger`, a Trigger's
Subscription `<broker>-<trigger>-<uid>`, an ApiServerSource's Deployment
`apiserversource-<source>-<uid>`, a ContainerSource's `<source>-deployment` and
`<source>-sinkbinding`, a Knative Service's Revision `<name>-<generation:05d>`. Sequence and
Parallel children keep Knative's plain `<name>-kn-sequence-<i>` (objects of custom kinds may
be 253 characters long; their channels' Services are shortened here).
"""

from __future__ import annotations

import hashlib
import re

LONGEST = 63
"""A DNS-1123 label: the longest name every kind (a Service, a label value) accepts."""
_MD5_HEX = 32
_HEAD = LONGEST - _MD5_HEX
"""How much of the parent is kept when the hash must fit too."""
_TRAILING = re.compile(r"[^a-zA-Z0-9]+$")

CHANNEL_SERVICE_SUFFIX = "-kn-channel"
"""An InMemoryChannel's Service: `child_name(<channel>, "-kn-channel")`."""


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def child_name(parent: str, suffix: str) -> str:
    """knative.dev/pkg `kmeta.ChildName(parent, suffix)`."""
    if len(parent) <= LONGEST - len(suffix):
        return parent + suffix
    if _HEAD - len(suffix) <= 0:
        name = parent[:_HEAD] + _md5(parent + suffix)
        if (room := LONGEST - len(name)) > 0:
            name += suffix[:room]
        return _TRAILING.sub("", name)  # a name ends alphanumeric
    return parent[: _HEAD - len(suffix)] + _md5(parent) + suffix


def channel_service(channel: str) -> str:
    """The name of an InMemoryChannel's Service (and the first label of its host)."""
    return child_name(channel, CHANNEL_SERVICE_SUFFIX)
