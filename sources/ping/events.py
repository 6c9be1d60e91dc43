"""The CloudEvent of one tick, as Knative's mtping adapter makes it.

`type` `dev.knative.sources.ping`, `source` `/apis/v1/namespaces/<ns>/pingsources/<name>`, a
new UUID `id` per tick, no `subject`; data and `datacontenttype` from the spec (see
`spec.Payload`); `ceOverrides.extensions` set last. `time` is the scheduled tick (Knative
stamps the send time): the same tick always carries the same time, which receivers can use.
"""

from __future__ import annotations

import datetime

from kevents import cloudevent
from sources.ping import spec

TYPE = "dev.knative.sources.ping"


def make(job: spec.Job, tick: float) -> cloudevent.CloudEvent:
    return cloudevent.build(
        TYPE,
        job.source,
        job.payload.data,
        datacontenttype=job.payload.content_type,
        time=datetime.datetime.fromtimestamp(tick, datetime.UTC),
        extensions=job.extensions,
    )
