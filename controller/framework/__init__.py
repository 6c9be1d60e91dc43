"""The controller's framework: what every kind's reconciler runs on, knowing no kind.

    workqueue.py    per-key dedupe, never two workers on one key, exponential requeue
    tracking.py     re-reconcile an object when a referenced object changes (shared watches)
    loop.py         one controller: a kind's reconciler + watches + queue + workers
    reconciling.py  the Reconciler seam, ReconcileError, keys and owner references
    lifecycle.py    the generic reconciler: a `Kind` implements reconcile/finalize; get,
                    deletion, finalizers, observedGeneration, status write done once
    statuses.py     status write-back: merge patch of what changed, resourceVersion-guarded
    conditions.py   Knative duck conditions, living condition set (Ready)
    dependencies.py resolve destinations/read referenced objects, remembered for tracking
    sinks.py        Destination -> URL (Service, any Addressable, uri, ref + relative uri)
    discovery.py    which kinds the API server serves (resource lookups by kind)
    metrics.py      the controller's Prometheus metrics
    eventtypes.py   a source's EventTypes (one per declared type), written beside its status

Kinds live beside this package (`controller/<kind>/`), with the helpers several kinds share
(`availability`, `channelable`, `podsecurity`, `configstore`) and the process wiring (`app`,
`manager`, `context`, `settings`).
"""
