"""The ApiServerSource adapter against the real API server, delivering to loopback sinks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, exposition

from kevents import cloudevent, kubeapi, probes, runner, settings, tracing
from sources.apiserver import adapter, config
from tests import waiting

pytestmark = pytest.mark.cluster


@dataclass
class Sink:
    """A loopback CloudEvents sink; `responses` are answered in order, then 202."""

    events: list[cloudevent.CloudEvent] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    responses: list[int] = field(default_factory=list)
    attempts: int = 0
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.responses:
            return web.Response(status=self.responses.pop(0))
        event = cloudevent.decode(dict(request.headers), await request.read())
        self.events.append(event)
        self.headers.append(dict(request.headers))
        self.arrived.set()
        return web.Response(status=202)

    def of(self, name: str) -> list[tuple[str, Any]]:
        return [
            (e.get_type(), e.get_data()) for e in self.events if e.get_extension("name") == name
        ]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 20) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self.arrived.clear()
                await self.arrived.wait()


@contextlib.asynccontextmanager
async def serve_sink(sink: Sink, port: int = 0) -> AsyncIterator[Sink]:
    app = web.Application()
    app.router.add_post("/", sink.handle)
    app_runner = web.AppRunner(app)
    await app_runner.setup()
    site = web.TCPSite(app_runner, "127.0.0.1", port)
    await site.start()
    bound = app_runner.addresses[0][1]
    sink.url = f"http://127.0.0.1:{bound}/"
    try:
        yield sink
    finally:
        await app_runner.cleanup()


@contextlib.asynccontextmanager
async def running_adapter(
    api: client.ApiClient,
    sink_url: str,
    source_config: dict[str, Any],
    namespace: str,
    tracer_provider: sdk_trace.TracerProvider | None = None,
) -> AsyncIterator[adapter.Adapter]:
    """The adapter with one ordered send queue: every event reaches the sink in watch order,
    so a sentinel object changed last and seen at the sink proves nothing else is coming."""
    adapter_settings = settings.AdapterSettings.from_env(
        {"K_SINK": sink_url, "NAMESPACE": namespace, "NAME": "test-source"}
    )
    source = config.parse(json.dumps(source_config))
    kinds = await adapter.discover(kubeapi.KubeApi(api), source.resources)
    readiness = probes.Readiness()
    receive = adapter.Adapter(
        kubeapi.KubeApi(api),
        adapter_settings,
        source,
        kinds,
        registry=CollectorRegistry(),
        readiness=readiness,
        tracer_provider=tracer_provider,
        shards=1,
    )
    run = runner.Runner(receive.components(), readiness=readiness, handle_signals=False, grace=10)
    task = asyncio.create_task(run.run())
    try:
        await waiting.until(lambda: readiness.ready)
        yield receive
    finally:
        run.request_stop()
        assert await task == 0


async def _sentinel(
    core: client.CoreV1Api, sink: Sink, namespace: str, labels: dict[str, str] | None = None
) -> None:
    """Create a ConfigMap last and wait for its event: whatever the watch saw before it has
    been delivered (one ordered queue), so what is missing now never arrives."""
    meta = client.V1ObjectMeta(name="sentinel", labels=labels)
    await core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=meta))
    await sink.wait_for(lambda: bool(sink.of("sentinel")))


def _config(namespace: str, kind: str = "configmaps", **extra: Any) -> dict[str, Any]:
    return {
        "namespaces": [namespace],
        "resources": [{"gvr": {"Group": "", "Version": "v1", "Resource": kind}}],
        "mode": "Resource",
        **extra,
    }


async def test_configmap_changes_yield_one_event_each_with_knative_attributes(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    async with (
        serve_sink(Sink()) as sink,
        running_adapter(api_client, sink.url, _config(namespace), namespace) as receive,
    ):
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm1"), data={"a": "1"})
        await core.create_namespaced_config_map(namespace, body)
        await core.patch_namespaced_config_map("cm1", namespace, {"data": {"a": "2"}})
        await core.delete_namespaced_config_map("cm1", namespace)
        await _sentinel(core, sink, namespace)
        types = [t for t, _ in sink.of("cm1")]
        assert types == [
            "dev.knative.apiserver.resource.add",
            "dev.knative.apiserver.resource.update",
            "dev.knative.apiserver.resource.delete",
        ]
        add = next(e for e in sink.events if e.get_extension("name") == "cm1")
        assert add.get_source() == receive.event_source == api_client.configuration.host
        assert add.get_subject() == f"/apis/v1/namespaces/{namespace}/configmaps/cm1"
        assert add.get_datacontenttype() == "application/json"
        assert add.get_extension("kind") == "ConfigMap"
        assert add.get_extension("apiversion") == "v1"
        assert add.get_extension("namespace") == namespace
        data = add.get_data()
        assert isinstance(data, dict)
        assert data["kind"] == "ConfigMap"
        assert data["data"] == {"a": "1"}
        assert sink.of("cm1")[1][1]["data"] == {"a": "2"}
        assert sink.headers[0]["Kn-Namespace"] == namespace


async def test_core_events_reference_mode_and_label_selector(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    cfg = _config(namespace, mode="Reference")
    cfg["resources"] = [
        {"gvr": {"Group": "", "Version": "v1", "Resource": "events"}},
        {"gvr": {"Group": "", "Version": "v1", "Resource": "configmaps"}, "selector": "watch=yes"},
    ]
    async with serve_sink(Sink()) as sink, running_adapter(api_client, sink.url, cfg, namespace):
        await core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ignored"))
        )
        await core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="picked", labels={"watch": "yes"})
            ),
        )
        await core.create_namespaced_event(
            namespace,
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(name="ev1"),
                involved_object=client.V1ObjectReference(
                    kind="ConfigMap", name="picked", namespace=namespace
                ),
                reason="Test",
                message="hello",
            ),
        )
        await sink.wait_for(lambda: bool(sink.of("picked")) and bool(sink.of("ev1")))
        await _sentinel(core, sink, namespace, labels={"watch": "yes"})
        assert sink.of("ignored") == []
        assert sink.of("picked") == [
            (
                "dev.knative.apiserver.ref.add",
                {"kind": "ConfigMap", "namespace": namespace, "name": "picked", "apiVersion": "v1"},
            )
        ]
        ev_type, ev_data = sink.of("ev1")[0]
        assert ev_type == "dev.knative.apiserver.ref.add"
        assert ev_data == {
            "kind": "Event",
            "namespace": namespace,
            "name": "ev1",
            "apiVersion": "v1",
        }


async def test_owner_filter_only_sends_owned_objects(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    parent = await core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="parent"))
    )
    cfg = _config(namespace, owner={"apiVersion": "v1", "kind": "ConfigMap"})
    async with serve_sink(Sink()) as sink, running_adapter(api_client, sink.url, cfg, namespace):
        owner_ref = client.V1OwnerReference(
            api_version="v1", kind="ConfigMap", name="parent", uid=parent.metadata.uid
        )
        await core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="orphan"))
        )
        await core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="child", owner_references=[owner_ref])
            ),
        )
        sentinel = client.V1ObjectMeta(name="sentinel", owner_references=[owner_ref])
        await core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=sentinel))
        await sink.wait_for(lambda: bool(sink.of("sentinel")))
        assert [name for name in ("orphan", "child") if sink.of(name)] == ["child"]


async def test_retries_503_then_delivers_and_400_is_not_retried(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    async with (
        serve_sink(Sink(responses=[503, 503])) as sink,
        running_adapter(api_client, sink.url, _config(namespace), namespace) as receive,
    ):
        await core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="flaky"))
        )
        await sink.wait_for(lambda: bool(sink.of("flaky")))
        assert sink.attempts == 3
        assert len(sink.of("flaky")) == 1

        sink.responses = [400]
        attempts_before = sink.attempts
        await core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="refused"))
        )
        await _sentinel(core, sink, namespace)
        assert sink.attempts == attempts_before + 2, "a 400 must not be retried"
        assert sink.of("refused") == []
        registry_text = exposition.generate_latest(receive.registry).decode()
        assert 'kevents_events_lost_total{reason="refused"} 1.0' in registry_text
        sent = 'kevents_apiserver_events_sent_total{result="%s",type="%s"}'
        assert sent % ("failed", "dev.knative.apiserver.resource.add") + " 1.0" in registry_text
        assert sent % ("delivered", "dev.knative.apiserver.resource.add") in registry_text


async def test_sink_down_for_ten_seconds_loses_nothing(
    api_client: client.ApiClient, namespace: str, unused_tcp_port: int
) -> None:
    core = client.CoreV1Api(api_client)
    sink = Sink()
    sink.url = f"http://127.0.0.1:{unused_tcp_port}/"
    # The sink stays down until the first event has been retried with backoffs adding up to
    # more than 10 s: the adapter's own policy, one event in flight at a time (shards=1).
    policy = adapter.RETRY
    retried = next(
        n for n in range(1, policy.retry + 1) if sum(map(policy.backoff, range(n))) >= 10.0
    )
    async with running_adapter(api_client, sink.url, _config(namespace), namespace) as receive:
        names = [f"down-{i}" for i in range(20)]
        for name in names:
            await core.create_namespaced_config_map(
                namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name))
            )

        def retries() -> float:
            return sum(
                sample.value
                for family in receive.registry.collect()
                if family.name == "kevents_send_retries"
                for sample in family.samples
                if sample.name == "kevents_send_retries_total"
            )

        await waiting.until(lambda: retries() >= retried, within=60)
        async with serve_sink(sink, port=unused_tcp_port):
            await sink.wait_for(lambda: all(sink.of(n) for n in names), within=30)
            got = [str(e.get_extension("name")) for e in sink.events]
            assert sorted(n for n in got if n.startswith("down-")) == sorted(names)


async def test_broken_watch_and_relist_give_no_duplicate_and_no_gap(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    for name in ("keep", "change", "remove"):
        await core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"v": "0"})
        )
    async with (
        serve_sink(Sink()) as sink,
        running_adapter(api_client, sink.url, _config(namespace), namespace) as receive,
    ):
        watcher = receive.watchers[0]
        # 1. the connection dies; changes made meanwhile arrive once after the resume
        watcher.reconnect()
        await core.patch_namespaced_config_map("change", namespace, {"data": {"v": "1"}})
        await sink.wait_for(lambda: len(sink.of("change")) == 1)
        # 2. history expired (410): the watcher relists and emits only the difference
        watcher.relist()
        await core.patch_namespaced_config_map("change", namespace, {"data": {"v": "2"}})
        await core.delete_namespaced_config_map("remove", namespace)
        await core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="new"))
        )
        await _sentinel(core, sink, namespace)
    assert sink.of("keep") == []
    assert [(t, d["data"]) for t, d in sink.of("change")] == [
        ("dev.knative.apiserver.resource.update", {"v": "1"}),
        ("dev.knative.apiserver.resource.update", {"v": "2"}),
    ]
    assert [t for t, _ in sink.of("remove")] == ["dev.knative.apiserver.resource.delete"]
    assert [t for t, _ in sink.of("new")] == ["dev.knative.apiserver.resource.add"]


async def test_unknown_resource_is_a_config_error(api_client: client.ApiClient) -> None:
    source = config.parse(
        json.dumps(
            {
                "allNamespaces": True,
                "resources": [{"gvr": {"Group": "", "Version": "v1", "Resource": "gizmos"}}],
            }
        )
    )
    with pytest.raises(Exception, match="the API server has no resource gizmos/v1"):
        await adapter.discover(kubeapi.KubeApi(api_client), source.resources)


async def test_trace_reaches_the_exporter_and_the_sink_sees_w3c_and_b3(
    api_client: client.ApiClient, namespace: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = tracing.make_provider(
        tracing.parse_config({"backend": "zipkin", "zipkin-endpoint": "http://127.0.0.1:9/x",
                              "sample-rate": "1"}),
        service_name="apiserver-source",
        exporter=exporter,
    )  # fmt: skip
    core = client.CoreV1Api(api_client)
    async with (
        serve_sink(Sink()) as sink,
        running_adapter(
            api_client, sink.url, _config(namespace), namespace, tracer_provider=provider
        ),
    ):
        await core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="traced"))
        )
        await sink.wait_for(lambda: bool(sink.of("traced")))
    index = next(i for i, e in enumerate(sink.events) if e.get_extension("name") == "traced")
    headers = {k.lower(): v for k, v in sink.headers[index].items()}
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert version == "00"
    assert int(flags, 16) & 1, "the sampled flag must be set"
    assert len(trace_id) == 32 and len(span_id) == 16
    assert headers["x-b3-traceid"] == trace_id
    assert headers["x-b3-spanid"] == span_id
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == int(trace_id, 16)]
    names = {s.name for s in spans}
    assert "dev.knative.apiserver.resource.add emit" in names
    post = next(s for s in spans if s.name == "POST")
    assert format(post.context.span_id, "016x") == span_id
    emit = next(s for s in spans if s.name.endswith("emit"))
    assert post.parent is not None and post.parent.span_id == emit.context.span_id
    provider.shutdown()


async def _service_account_client(
    api_client: client.ApiClient, namespace: str, rules: list[client.V1PolicyRule]
) -> client.ApiClient:
    """An ApiClient authenticated with a fresh ServiceAccount's token, granted `rules`."""
    core = client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    await core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="adapter"))
    )
    await rbac.create_namespaced_role(
        namespace, client.V1Role(metadata=client.V1ObjectMeta(name="adapter"), rules=rules)
    )
    await rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="adapter"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="adapter"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="adapter", namespace=namespace)
            ],
        ),
    )
    token = await core.create_namespaced_service_account_token(
        "adapter",
        namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    )
    cfg = client.Configuration(host=api_client.configuration.host)
    cfg.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    cfg.api_key = {"BearerToken": f"Bearer {token.status.token}"}
    return client.ApiClient(configuration=cfg)


async def test_missing_permission_is_logged_once_and_other_resources_flow(
    api_client: client.ApiClient, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    readable = client.V1PolicyRule(
        api_groups=[""], resources=["configmaps"], verbs=["get", "list", "watch"]
    )
    cfg = _config(namespace)
    cfg["resources"].append({"gvr": {"Group": "", "Version": "v1", "Resource": "secrets"}})
    core = client.CoreV1Api(api_client)
    async with await _service_account_client(api_client, namespace, [readable]) as restricted:
        async with (
            serve_sink(Sink()) as sink,
            running_adapter(restricted, sink.url, cfg, namespace) as receive,
        ):
            await core.create_namespaced_config_map(
                namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="visible"))
            )
            await core.create_namespaced_secret(
                namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="hidden"))
            )
            await sink.wait_for(lambda: bool(sink.of("visible")))
            secrets = next(w for w in receive.watchers if w.collection.resource == "secrets")
            await waiting.until(secrets.attempted.is_set)
            assert not secrets.listed.is_set(), "the forbidden watch must never have listed"
    assert sink.of("hidden") == []
    warnings = [r for r in caplog.records if "Missing permission" in r.getMessage()]
    assert len(warnings) == 1
    assert "secrets/v1 in namespace " + namespace in warnings[0].getMessage()
