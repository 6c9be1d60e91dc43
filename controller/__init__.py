"""Controller: reconcilers for the Knative-compatible resources (`python -m controller`).

Why a small reconcile loop of our own on kubernetes-asyncio, not kopf
---------------------------------------------------------------------
kopf is the closest Python framework, but it is handler-per-event ("on create", "on
update", with the diff) and keeps its progress in annotations and finalizers on the user's
objects. Knative controllers are level-based: any event only says "look at this key
again", and the reconcile recomputes the desired state from the whole spec. That is what
we need for compatibility (same status after any sequence of events, no kopf annotations on
the user's objects, deletion is plain garbage collection -- except a Subscription, which
keeps Knative's finalizer until its entry is out of the channel) and what we can test: a
kind's reconcile is one async function from object to status, and one generic reconciler
(`framework/lifecycle.py`, knative/pkg's generated reconcilers) does the get, deletion,
finalizers, observedGeneration and guarded status write around it for every kind. The
machinery it needs is small and lives in `framework/` (workqueue, tracking, loop: see its
docstring); `manager.py` hosts every kind's controller (`KINDS`), `app.py` wires the process.

kubernetes-asyncio supplies auth, TLS and token refresh; requests go out as raw JSON by path
(`kevents.kubeapi`), like client-go's dynamic client, because sink refs may name any kind.
The list+watch loop (`kevents.watching`, stateless mode) and the leader election
(`kevents.leadership`) are the shared layer's: reconcilers run only while the Lease is held.

Modules
-------
    framework/          what every kind runs on, knowing no kind: workqueue, tracking, loop,
                        reconciling, lifecycle (the generic reconciler), statuses, conditions,
                        dependencies, sinks, discovery, metrics (see its docstring)
    apis/               CRD schemas (rendered to manifests/300-*.yaml by hack/update-crds)
    context.py          what each kind's `wiring.build(ctx)` gets: clients, tracker, options
    availability.py     a Deployment's Available -> Deployed / DispatcherReady
    channelable.py      the Channelable duck's shared conditions (dead letter sink, policies)
    apiserversource/    adapter Deployment (pure), permission checks (SAR), reconciler, wiring
    podsecurity.py      the restricted securityContext of every adapter the controller makes
    pingsource/         shared adapter Deployment, reconciler (rules: kevents.pingspec)
    githubsource/       per-source adapter Deployment + Service and hook payload (pure), GitHub
                        hooks API client, Secret values, reconciler (finalizer), wiring
    inmemorychannel/    ExternalName channel Service + address (pure), reconciler, wiring
    channel/            default channelTemplate + backing channel (pure), reconciler, wiring
    subscription/       channel entry + readiness report (pure), reconciler (finalizer), wiring
    broker/             defaults from config-br-defaults + channel template, trigger channel and
                        ingress address (pure), MTChannelBasedBroker reconciler, wiring
    trigger/            the Subscription to the broker filter, kmeta child names, dependency
                        annotation (pure), reconciler (filter validation), wiring
    brokerinjection/    which namespaces/Triggers get a Broker (pure), Namespace reconciler
    sinkbinding/        subjects + env injection (pure), reconciler + binder (patches subjects,
                        releases them through an owner annotation, no finalizer),
                        TLS admission webhook with its rotated certificates (`webhook.py` says
                        why it only sees opted-in objects and fails open)
    containersource/    SinkBinding + Deployment (pure), reconciler, wiring
    eventtype/          EventType: ReferenceExists and Ready, reconciler, wiring
    configstore.py      config-logging / -observability / -tracing for the adapters' env
    settings.py         ControllerSettings from the environment"""
