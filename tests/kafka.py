"""Pytest fixtures for tests against the real Kafka broker of the local cluster.

    kafka_broker            session: a `KafkaBroker` (addresses, the SASL test user, configs)
    kafka_topic             function: a fresh topic name (deleted after the test; created by
                            whoever uses it first, or by `await kafka_broker.create(name)`)
    kafka_console_consumer  function: `read(topic, count)` -> list[ConsoleRecord], read with
                            Kafka's own console consumer (the same jars as the broker)

The broker is the one `hack/cluster up --kafka` runs (this fixture asks for it, which adds
Kafka to a running cluster). `KEVENTS_KAFKA_CREDENTIALS=<credentials.json>` points the tests
at another broker started from hack/localcluster/kafka.py (a developer's own, on other ports).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from hack.localcluster import kafka as localkafka
from kevents import kafka

REPO = pathlib.Path(__file__).resolve().parents[1]

_KEY_SEP, _HEADER_SEP, _LINE_SEP = "\x1f", "\x1e", "\x1d"


@dataclass(frozen=True)
class ConsoleRecord:
    """One record as Kafka's console consumer printed it."""

    partition: int
    offset: int
    headers: tuple[tuple[str, str], ...]
    key: str | None
    value: str


@dataclass(frozen=True)
class KafkaBroker:
    """The broker and its test user; `*_bootstrap` are host:port strings."""

    bootstrap: str
    sasl_bootstrap: str
    pods_bootstrap: str | None
    """`kafka.kevents-system.svc.cluster.local:9092` from pods (None without pod networking)."""
    pods_sasl_bootstrap: str | None
    user: str
    password: str

    def auth(self, mechanism: str = "PLAIN", *, password: str | None = None) -> kafka.KafkaAuth:
        """SASL_PLAINTEXT credentials of the test user (or a wrong `password`)."""
        return kafka.KafkaAuth.from_data(
            {
                "protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": mechanism,
                "user": self.user,
                "password": self.password if password is None else password,
            }
        )

    def secret_data(self, mechanism: str = "PLAIN") -> dict[str, str]:
        """The test user as a Knative Kafka Secret's `stringData` (for the pods' listener)."""
        return {
            "protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism,
            "user": self.user,
            "password": self.password,
        }

    def config(self, *, sasl: bool = False, **overrides: Any) -> dict[str, Any]:
        """Client config for the host listeners (PLAINTEXT, or SASL as the test user)."""
        if sasl:
            return kafka.client_config(self.sasl_bootstrap, self.auth(), **overrides)
        return kafka.client_config(self.bootstrap, **overrides)

    async def create(self, topic: str, partitions: int = 1) -> None:
        await kafka.ensure_topic(self.config(), topic, partitions=partitions)


def _credentials() -> pathlib.Path:
    override = os.environ.get("KEVENTS_KAFKA_CREDENTIALS")
    if override:
        return pathlib.Path(override)
    proc = subprocess.run(
        [str(REPO / "hack" / "cluster"), "up", "--kafka"],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"hack/cluster up --kafka failed:\n{proc.stderr}\n{proc.stdout}")
    state = pathlib.Path(proc.stdout.strip().splitlines()[-1]).parent
    return localkafka.credentials_path(state)


@pytest.fixture(scope="session")
def kafka_broker() -> KafkaBroker:
    info = json.loads(_credentials().read_text())
    return KafkaBroker(
        bootstrap=info["bootstrap"],
        sasl_bootstrap=info["sasl_bootstrap"],
        pods_bootstrap=info["pods_bootstrap"],
        pods_sasl_bootstrap=info["pods_sasl_bootstrap"],
        user=info["user"],
        password=info["password"],
    )


@pytest.fixture
async def kafka_topic(kafka_broker: KafkaBroker) -> AsyncIterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    await kafka.delete_topic(kafka_broker.config(), name)


def _parse(text: str) -> list[ConsoleRecord]:
    records = []
    for line in text.split(_LINE_SEP):
        if not line.strip():
            continue
        partition, offset, headers, key, value = line.lstrip("\n").split(_KEY_SEP, 4)
        pairs: tuple[tuple[str, str], ...] = ()
        if headers != "NO_HEADERS":
            pairs = tuple(
                (name, val)
                for name, _, val in (h.partition(":") for h in headers.split(_HEADER_SEP))
            )
        records.append(
            ConsoleRecord(
                partition=int(partition.removeprefix("Partition:")),
                offset=int(offset.removeprefix("Offset:")),
                headers=pairs,
                key=None if key == "null" else key,
                value=value,
            )
        )
    return records


@pytest.fixture
def kafka_console_consumer(kafka_broker: KafkaBroker) -> Callable[..., list[ConsoleRecord]]:
    """`read(topic, count, timeout=120.0)`: the first `count` records of `topic` (from the
    beginning) as Kafka's console consumer prints them; fails when fewer arrive in time."""

    def read(topic: str, count: int, timeout: float = 120.0) -> list[ConsoleRecord]:
        formatter = {
            "print.partition": "true",
            "print.offset": "true",
            "print.headers": "true",
            "print.key": "true",
            "key.separator": _KEY_SEP,
            "headers.separator": _HEADER_SEP,
            "line.separator": _LINE_SEP,
        }
        argv = localkafka.java_argv(
            localkafka.CONSOLE_CONSUMER, "--bootstrap-server", kafka_broker.bootstrap,
            "--topic", topic, "--from-beginning", "--max-messages", str(count),
            "--timeout-ms", str(int(timeout * 1000)),
            *(arg for k, v in formatter.items() for arg in ("--formatter-property", f"{k}={v}")),
        )  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 60)
        records = _parse(proc.stdout)
        assert len(records) == count, (
            f"console consumer read {len(records)} of {count} records from {topic}:\n"
            f"{proc.stderr[-2000:]}"
        )
        return records

    return read
