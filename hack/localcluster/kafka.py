"""Apache Kafka for the local cluster: one KRaft node (broker + controller) from Maven Central,
started by `hack/cluster up --kafka` with the machine's Java 17 and stopped by `down`.

    host      127.0.0.1:9092   PLAINTEXT
              127.0.0.1:9093   SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)
    pods      kafka.kevents-system.svc.cluster.local:9092 / :9093, two more listeners of
              the same kinds on the node's bridge address (ports 9094/9095: Kafka allows
              one listener per port) behind a selector-less Service (as Zipkin), when this
              cluster owns the pod network
    <state>/kafka/credentials.json   the addresses and the test user (`kevents`, its password
              made at the first `up`), for tests and benchmarks
    <state>/kafka/data               the log (kept by `down`, removed by `down --wipe`)

`org.apache.kafka:kafka_2.13` and `kafka-tools` with their runtime dependencies are resolved
by Maven into `${KEVENTS_CACHE:-~/.cache/kevents}/kafka/<version>/libs` once (about 55 MB,
half a minute); later starts take seconds. The same jars give Kafka's own tools for tests and
benchmarks: `java_argv(main_class, ...)` (e.g. `CONSOLE_CONSUMER`, `PRODUCER_PERFORMANCE`).
Host ports 9092-9095 are taken when free, else free ports (recorded in state.json); the
Service's ports are 9092/9093 always.
"""

from __future__ import annotations

import base64
import json
import pathlib
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Callable

import confluent_kafka
import confluent_kafka.admin

from hack import cache, processes
from hack.progress import maven

VERSION = "4.2.2"
SLF4J_VERSION = "2.0.17"  # Kafka's slf4j 1.7 API, upgraded to bind to log4j2 below
LOG4J_VERSION = "2.25.5"  # the log4j-core Kafka 4.2.2 depends on
SYSTEM_NAMESPACE = "kevents-system"
SERVICE_HOST = f"kafka.{SYSTEM_NAMESPACE}.svc.cluster.local"
DEFAULT_PORTS = {"kafka": 9092, "kafka-sasl": 9093, "kafka-pods": 9094, "kafka-pods-sasl": 9095}
SERVICE_PORTS = {"kafka-pods": 9092, "kafka-pods-sasl": 9093}
USER = "kevents"
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
HEAP = ["-Xms64m", "-Xmx384m"]

SERVER = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
PRODUCER_PERFORMANCE = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_PERFORMANCE = "org.apache.kafka.tools.ConsumerPerformance"

POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.kevents.hack</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{VERSION}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId>
      <version>{VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{SLF4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
"""

# Warnings and the "started" line only: Kafka's INFO log is megabytes per test run.
LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""

TOOLS_LOG4J2 = LOG4J2.replace("logger.server.level = INFO", "logger.server.level = WARN")


def cache_dir() -> pathlib.Path:
    return cache.root() / "kafka" / VERSION


def libs() -> pathlib.Path:
    """The folder of Kafka's jars, resolved with Maven into the cache when missing."""
    target = cache_dir()
    done = target / "libs.done"
    if not done.exists():
        target.mkdir(parents=True, exist_ok=True)
        (target / "pom.xml").write_text(POM)
        staging = target / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        # Batch mode, a moving line on stderr (files and bytes fetched; Maven's log if it
        # fails): stdout of `hack/cluster up` is the kubeconfig path.
        maven.fetch(
            ["mvn", "-B", "-f", str(target / "pom.xml"), "dependency:copy-dependencies",
             f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
            f"fetching Kafka {VERSION} from Maven Central (once)",
        )  # fmt: skip
        shutil.rmtree(target / "libs", ignore_errors=True)
        staging.rename(target / "libs")
        (target / "tools-log4j2.properties").write_text(TOOLS_LOG4J2)
        done.write_text(VERSION + "\n")
    return target / "libs"


def java_argv(main_class: str, *args: str, heap: list[str] | None = None) -> list[str]:
    """A `java` command running `main_class` from Kafka's jars (tools log warnings only)."""
    lib = libs()
    return ["java", *(heap or ["-Xmx256m"]), "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={lib.parent / 'tools-log4j2.properties'}",
            "-cp", f"{lib}/*", main_class, *args]  # fmt: skip


def credentials_path(directory: pathlib.Path) -> pathlib.Path:
    return directory / "kafka" / "credentials.json"


def _password(directory: pathlib.Path) -> str:
    path = credentials_path(directory)
    if path.exists():
        return str(json.loads(path.read_text())["password"])
    return secrets.token_urlsafe(18)


def server_properties(
    directory: pathlib.Path, ports: dict[str, int], bridge: str | None, password: str
) -> str:
    plain, sasl, controller = ports["kafka"], ports["kafka-sasl"], ports["kafka-controller"]
    listeners = [f"PLAINTEXT://127.0.0.1:{plain}", f"SASL_PLAINTEXT://127.0.0.1:{sasl}",
                 f"CONTROLLER://127.0.0.1:{controller}"]  # fmt: skip
    advertised = [f"PLAINTEXT://127.0.0.1:{plain}", f"SASL_PLAINTEXT://127.0.0.1:{sasl}"]
    if bridge:
        # Pods connect through the Service; Kafka hands them the Service's name and ports back.
        for name, port in (("PODS", "kafka-pods"), ("PODS_SASL", "kafka-pods-sasl")):
            listeners.append(f"{name}://{bridge}:{ports[port]}")
            advertised.append(f"{name}://{SERVICE_HOST}:{SERVICE_PORTS[port]}")
    plain_jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{USER}" password="{password}" user_{USER}="{password}";'
    )
    scram_jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listeners": ",".join(listeners),
        "advertised.listeners": ",".join(advertised),
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
        "PODS:PLAINTEXT,PODS_SASL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "log.dirs": str(directory / "kafka" / "data"),
        # one node: every internal topic has one replica
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "24",
        "log.segment.bytes": str(64 * 1024 * 1024),
    }
    for listener in ("sasl_plaintext", "pods_sasl"):
        lines[f"listener.name.{listener}.plain.sasl.jaas.config"] = plain_jaas
        for mech in ("scram-sha-256", "scram-sha-512"):
            lines[f"listener.name.{listener}.{mech}.sasl.jaas.config"] = scram_jaas
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def kafka_service(bridge: str, ports: dict[str, int]) -> dict[str, object]:
    """A selector-less Service `kafka` with an EndpointSlice at the node's bridge address."""
    named = [("plaintext", "kafka-pods"), ("sasl", "kafka-pods-sasl")]
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "kafka", "namespace": SYSTEM_NAMESPACE},
                "spec": {
                    "ports": [
                        {"name": n, "port": SERVICE_PORTS[p], "protocol": "TCP"} for n, p in named
                    ]
                },
            },
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "kafka-node",
                    "namespace": SYSTEM_NAMESPACE,
                    "labels": {
                        "kubernetes.io/service-name": "kafka",
                        "endpointslice.kubernetes.io/managed-by": "kevents-hack",
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [bridge], "conditions": {"ready": True}}],
                "ports": [{"name": n, "port": ports[p], "protocol": "TCP"} for n, p in named],
            },
        ],
    }


def credentials(ports: dict[str, int], bridge: str | None, password: str) -> dict[str, object]:
    plain, sasl = ports["kafka"], ports["kafka-sasl"]
    return {
        "version": VERSION,
        "bootstrap": f"127.0.0.1:{plain}",
        "sasl_bootstrap": f"127.0.0.1:{sasl}",
        "pods_bootstrap": f"{SERVICE_HOST}:{SERVICE_PORTS['kafka-pods']}" if bridge else None,
        "pods_sasl_bootstrap": (
            f"{SERVICE_HOST}:{SERVICE_PORTS['kafka-pods-sasl']}" if bridge else None
        ),
        "user": USER,
        "password": password,
        "mechanisms": list(MECHANISMS),
    }


def _format(directory: pathlib.Path, config: pathlib.Path, password: str) -> None:
    """Format the log directory once (KRaft): cluster id, SCRAM credentials of the test user."""
    if (directory / "kafka" / "data" / "meta.properties").exists():
        return
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    scram = [arg for mech in MECHANISMS[1:]
             for arg in ("--add-scram", f"{mech}=[name={USER},password={password}]")]  # fmt: skip
    proc = subprocess.run(
        java_argv(STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(config), *scram),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"formatting Kafka's log failed:\n{proc.stdout}\n{proc.stderr}")


def start(
    directory: pathlib.Path,
    ports: dict[str, int],
    bridge: str | None,
    kubectl: Callable[..., None],
    port_free: Callable[[int], bool],
    free_port: Callable[[], int],
    log: Callable[[str], None],
) -> processes.Recorded:
    """Start the Kafka node; returns the process to record (the caller waits for `ready`)."""
    for name, default in (*DEFAULT_PORTS.items(), ("kafka-controller", 0)):
        # the well-known port whenever it is free (a fallback port does not stick), else the
        # one recorded last time, else any
        candidates = [p for p in (default, ports.get(name)) if p and port_free(p)]
        ports[name] = candidates[0] if candidates else free_port()
    home = directory / "kafka"
    (home / "data").mkdir(parents=True, exist_ok=True)
    password = _password(directory)
    config = home / "server.properties"
    config.write_text(server_properties(directory, ports, bridge, password))
    (home / "log4j2.properties").write_text(LOG4J2)
    _format(directory, config, password)
    path = credentials_path(directory)
    path.write_text(json.dumps(credentials(ports, bridge, password), indent=2))
    path.chmod(0o600)
    if bridge:
        kubectl("create", "namespace", SYSTEM_NAMESPACE, check=False)
        kubectl("apply", "-f", "-", input=json.dumps(kafka_service(bridge, ports)))
    argv = ["java", *HEAP, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
            "-cp", f"{libs()}/*", SERVER, str(config)]  # fmt: skip
    rec = processes.spawn("kafka", argv, directory / "logs" / "kafka.log")
    log(f"started kafka (pid {rec.pid}) on 127.0.0.1:{ports['kafka']} (PLAINTEXT) and "
        f"127.0.0.1:{ports['kafka-sasl']} (SASL_PLAINTEXT)")  # fmt: skip
    return rec


def ready(ports: dict[str, int]) -> bool:
    """True once the broker answers a metadata request on its PLAINTEXT listener."""
    admin = confluent_kafka.admin.AdminClient(
        {"bootstrap.servers": f"127.0.0.1:{ports['kafka']}", "log_level": 0}
    )
    try:
        metadata = admin.list_topics(timeout=2)
    except confluent_kafka.KafkaException:
        return False
    return bool(metadata.brokers)


def status(directory: pathlib.Path) -> dict[str, object] | None:
    """The addresses (and where the credentials are) for `hack/cluster status`."""
    path = credentials_path(directory)
    if not path.exists():
        return None
    info = json.loads(path.read_text())
    return {
        "bootstrap": info["bootstrap"],
        "sasl_bootstrap": info["sasl_bootstrap"],
        "pods_bootstrap": info["pods_bootstrap"],
        "pods_sasl_bootstrap": info["pods_sasl_bootstrap"],
        "credentials": str(path),
    }
