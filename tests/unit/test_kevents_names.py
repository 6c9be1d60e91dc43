"""`kevents.names.child_name` is knative.dev/pkg's `kmeta.ChildName`, byte for byte: the
cases of Knative's own `kmeta/names_test.go`, and the names of the children a long-named
object gets (the rekt smoke tests' `services "<name>-kn-channel" ... must be no more than
63 characters`)."""

from __future__ import annotations

import re

import pytest

from controller.broker import resources as broker_resources
from controller.inmemorychannel import service
from controller.trigger import subscription
from kevents import names

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@pytest.mark.parametrize(
    ("parent", "suffix", "want"),
    [
        ("asdf", "-deployment", "asdf-deployment"),
        ("f" * 63, "-deployment", "f" * 20 + "105d7597f637e83cc711605ac3ea4957-deployment"),
        ("f" * 63, "-deploy", "ffffffffffffffffffffffff105d7597f637e83cc711605ac3ea4957-deploy"),
        ("f" * 63, "f" * 63, "fffffffffffffffffffffffffffffff0502661254f13c89973cb3a83e0cbec0"),
        ("a", "f" * 63, "ab5cfd486935decbc0d305799f4ce4414ffffffffffffffffffffffffffffff"),
        ("b" * 32, "f" * 32, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb329c7c81b9ab3ba71aa139066aa5625d"),
        ("aaaa", "b---a" * 20, "aaaa7a3f7966594e3f0849720eced8212c18b---ab---ab---ab---ab---ab"),
        (
            "a" * 17,
            "a.-.-.-.-.-.-." + "a" * 37,
            "aaaaaaaaaaaaaaaaaa1eb10dc911444f8434af83b7225442da",
        ),
    ],
    ids=[
        "fits", "long-parent", "long-parent-short-suffix", "long-suffix",
        "short-parent-long-suffix", "both-32", "suffix-cut-at-dash", "trailing-punctuation-removed",
    ],
)  # fmt: skip
def test_child_name_is_kmeta_child_name(parent: str, suffix: str, want: str) -> None:
    assert names.child_name(parent, suffix) == want


LONG = "channel-smoke-" + "x" * 45  # 59 characters: a valid name for a channel object


def test_a_long_channel_gets_a_service_name_kubernetes_accepts() -> None:
    name = service.service_name(LONG)
    assert len(name) == 63 and DNS1123_LABEL.fullmatch(name)
    assert name == LONG[:20] + names._md5(LONG) + "-kn-channel"
    assert service.address(LONG, "ns")["url"] == f"http://{name}.ns.svc.cluster.local"
    assert service.service_name("short") == "short-kn-channel"


def test_a_long_broker_gets_a_trigger_channel_and_service_name_kubernetes_accepts() -> None:
    channel = broker_resources.trigger_channel_name(LONG)
    assert channel == names.child_name(LONG, "-kne-trigger") and len(channel) == 63
    assert len(service.service_name(channel)) == 63
    assert broker_resources.trigger_channel_name("default") == "default-kne-trigger"


def test_a_trigger_subscription_name_is_knatives() -> None:
    uid = "75e4a668-035f-4ce8-8c45-f4d3ac850155"
    got = subscription.name(LONG, "trigger", uid)
    assert got == names.child_name(f"{LONG}-trigger-", uid) and len(got) <= 63
