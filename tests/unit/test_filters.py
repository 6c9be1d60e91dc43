"""Knative Trigger filters: legacy `filter.attributes`, SubscriptionsAPI dialects, validation."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

import pytest

from kevents.eventfilter import dialects, trigger

EVENT: Mapping[str, object] = {
    "specversion": "1.0",
    "id": "1",
    "source": "/apis/v1/namespaces/default/pods",
    "type": "dev.knative.apiserver.resource.add",
    "subject": "pod-1",
    "datacontenttype": "Application/JSON; charset=utf-8",
    "buildstatus": "failed",
    "empty": "",
    "count": 7,
    "flag": True,
    "time": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC),
}

Attrs = Mapping[str, str] | None
Filters = Sequence[Mapping[str, object]] | None

CASES: list[tuple[str, Attrs, Filters, bool]] = [
    ("no filter passes everything", None, None, True),
    ("empty attributes pass everything", {}, [], True),
    ("attributes: exact type", {"type": "dev.knative.apiserver.resource.add"}, None, True),
    ("attributes: other type", {"type": "dev.knative.apiserver.resource.delete"}, None, False),
    ("attributes: extension buildstatus", {"buildstatus": "failed"}, None, True),
    ("attributes: extension other value", {"buildstatus": "succeeded"}, None, False),
    ("attributes: all keys must match", {"buildstatus": "failed", "type": "x"}, None, False),
    ("attributes: empty value = present", {"subject": ""}, None, True),
    ("attributes: empty value, missing attribute", {"dataschema": ""}, None, False),
    ("attributes: empty value, empty attribute", {"empty": ""}, None, False),
    ("attributes: missing extension", {"nope": "x"}, None, False),
    ("attributes: case sensitive", {"buildstatus": "FAILED"}, None, False),
    ("attributes: integer extension string form", {"count": "7"}, None, True),
    ("attributes: boolean extension string form", {"flag": "true"}, None, True),
    ("attributes: datamediatype", {"datamediatype": "application/json"}, None, True),
    ("attributes: time as RFC 3339", {"time": "2024-05-01T12:00:00Z"}, None, True),
    ("filters win over attributes", {"type": "x"}, [{"exact": {"subject": "pod-1"}}], True),
    ("exact", None, [{"exact": {"buildstatus": "failed"}}], True),
    ("exact mismatch", None, [{"exact": {"buildstatus": "ok"}}], False),
    ("exact missing", None, [{"exact": {"nope": "x"}}], False),
    ("prefix", None, [{"prefix": {"type": "dev.knative."}}], True),
    ("prefix mismatch", None, [{"prefix": {"type": "com."}}], False),
    ("prefix on integer string form", None, [{"prefix": {"count": "7"}}], True),
    ("prefix missing", None, [{"prefix": {"nope": "x"}}], False),
    ("suffix", None, [{"suffix": {"type": ".add"}}], True),
    ("suffix mismatch", None, [{"suffix": {"type": ".delete"}}], False),
    ("suffix on boolean string form", None, [{"suffix": {"flag": "rue"}}], True),
    ("list entries are ANDed", None, [{"prefix": {"type": "dev."}}, {"exact": {"id": "2"}}], False),
    ("all", None, [{"all": [{"prefix": {"type": "dev."}}, {"suffix": {"type": ".add"}}]}], True),
    (
        "all, one fails",
        None,
        [{"all": [{"prefix": {"type": "dev."}}, {"exact": {"id": "2"}}]}],
        False,
    ),
    ("any", None, [{"any": [{"exact": {"id": "2"}}, {"exact": {"id": "1"}}]}], True),
    ("any, none", None, [{"any": [{"exact": {"id": "2"}}, {"exact": {"id": "3"}}]}], False),
    ("not", None, [{"not": {"exact": {"buildstatus": "ok"}}}], True),
    ("not, matching", None, [{"not": {"exact": {"buildstatus": "failed"}}}], False),
    ("not not", None, [{"not": {"not": {"exact": {"id": "1"}}}}], True),
    ("cesql", None, [{"cesql": "type LIKE 'dev.knative.%' AND buildstatus = 'failed'"}], True),
    ("cesql false", None, [{"cesql": "type LIKE 'com.%'"}], False),
    ("cesql error never matches", None, [{"cesql": "nope = 'x' OR TRUE"}], False),
    ("cesql error, negated, still passes", None, [{"not": {"cesql": "nope = 'x'"}}], True),
    ("cesql non-boolean never matches", None, [{"cesql": "'true'"}], False),
    ("cesql typed extension", None, [{"cesql": "count > 5 AND flag"}], True),
    (
        "nested mix",
        None,
        [{"any": [{"cesql": "FALSE"}, {"all": [{"not": {"prefix": {"id": "9"}}}]}]}],
        True,
    ),
]


@pytest.mark.parametrize(
    ("attrs", "filters", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_trigger_filter_matching(attrs: Attrs, filters: Filters, expected: bool) -> None:
    matcher = trigger.compile_trigger_filter(attrs, filters)

    assert matcher.matches(EVENT) is expected


def test_two_triggers_split_a_mixed_stream_exactly() -> None:
    failed = trigger.compile_trigger_filter({"buildstatus": "failed"}, None)
    passed = trigger.compile_trigger_filter(None, [{"exact": {"buildstatus": "passed"}}])
    stream = [
        {**EVENT, "id": str(i), "buildstatus": ("failed", "passed")[i % 2]} for i in range(10)
    ]

    got_failed = [e["id"] for e in stream if failed.matches(e)]
    got_passed = [e["id"] for e in stream if passed.matches(e)]

    assert got_failed == ["0", "2", "4", "6", "8"]
    assert got_passed == ["1", "3", "5", "7", "9"]


def test_no_filter_is_pass_all() -> None:
    assert isinstance(trigger.compile_trigger_filter(None, None), dialects.PassAll)


INVALID: list[tuple[str, object, object, list[str]]] = [
    (
        "attribute key with upper case",
        {"Type": "x"},
        None,
        [
            "spec.filter.attributes[Type]: invalid attribute name 'Type': must start with a "
            "lowercase letter and contain only lowercase letters and digits"
        ],
    ),
    (
        "attribute key starting with a digit",
        {"1a": "x"},
        None,
        [
            "spec.filter.attributes[1a]: invalid attribute name '1a': must start with a lowercase "
            "letter and contain only lowercase letters and digits"
        ],
    ),
    (
        "attributes not a map",
        ["type"],
        None,
        ["spec.filter.attributes: must be a map of attribute names to strings"],
    ),
    (
        "two dialects",
        None,
        [{"exact": {"type": "x"}, "prefix": {"type": "y"}}],
        [
            "spec.filters[0]: exactly one of exact, prefix, suffix, all, any, not, cesql must be "
            "set, found exact, prefix"
        ],
    ),
    (
        "no dialect",
        None,
        [{}],
        [
            "spec.filters[0]: exactly one of exact, prefix, suffix, all, any, not, cesql must be "
            "set, found none"
        ],
    ),
    (
        "empty exact value",
        None,
        [{"exact": {"type": ""}}],
        ["spec.filters[0].exact[type]: value must not be empty"],
    ),
    (
        "no key in exact",
        None,
        [{"exact": {}}],
        ["spec.filters[0].exact: must have at least one key-value"],
    ),
    (
        "bad key in prefix",
        None,
        [{"prefix": {"my_ext": "a"}}],
        [
            "spec.filters[0].prefix[my_ext]: invalid attribute name 'my_ext': must start with a "
            "lowercase letter and contain only lowercase letters and digits"
        ],
    ),
    (
        "empty all",
        None,
        [{"all": []}],
        ["spec.filters[0].all: must contain at least one nested filter"],
    ),
    (
        "nested error path",
        None,
        [{"exact": {"id": "1"}}, {"any": [{"not": {"suffix": {"id": ""}}}]}],
        ["spec.filters[1].any[0].not.suffix[id]: value must not be empty"],
    ),
    (
        "cesql that does not parse",
        None,
        [{"exact": {"id": "1"}}, {"cesql": "type = = 'x'"}],
        ["spec.filters[1].cesql: parse error at column 8: unexpected '='"],
    ),
    (
        "empty cesql",
        None,
        [{"cesql": " "}],
        ["spec.filters[0].cesql: must be a non-empty CESQL expression"],
    ),
    ("filters not a list", None, {"exact": {}}, ["spec.filters: must be a list of filters"]),
]


@pytest.mark.parametrize(
    ("attrs", "filters", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_validation_messages_name_the_field(
    attrs: object, filters: object, expected: list[str]
) -> None:
    assert trigger.validate(attrs, filters) == expected


def test_every_problem_is_reported_together() -> None:
    with pytest.raises(trigger.InvalidFilterError) as caught:
        trigger.compile_trigger_filter({"Bad": "x"}, [{"cesql": "("}, {"exact": {}}])

    assert len(caught.value.problems) == 3
    assert caught.value.problems[1].startswith("spec.filters[0].cesql: parse error at column 2")


def test_validation_path_can_be_another_object() -> None:
    problems = trigger.validate(None, [{"exact": {"Type": "x"}}], path="spec.sources[0]")

    assert problems[0].startswith("spec.sources[0].filters[0].exact[Type]: ")


@pytest.mark.parametrize("dialect", ["exact", "prefix", "suffix"])
def test_a_dialect_with_several_attributes_is_valid_and_all_must_match(dialect: str) -> None:
    """rekt TestMTChannelBrokerNewTriggerFilters: Knative accepts several attributes in one
    exact/prefix/suffix filter (`ValidateAttributesNames`); an event passes when every one
    matches."""
    values = {
        "exact": ("dev.knative.apiserver.resource.add", "pod-1", "pod-2"),
        "prefix": ("dev.knative.", "pod", "node"),
        "suffix": (".add", "-1", "-2"),
    }[dialect]
    both = [{dialect: {"type": values[0], "subject": values[1]}}]
    one_wrong = [{dialect: {"type": values[0], "subject": values[2]}}]

    assert trigger.validate(None, both) == []
    assert trigger.compile_trigger_filter(None, both).matches(EVENT) is True
    assert trigger.compile_trigger_filter(None, one_wrong).matches(EVENT) is False


@pytest.mark.parametrize("name", ["dataschema", "schemaurl"])
def test_the_data_schema_is_found_under_either_versions_name(name: str) -> None:
    """Knative's filters read `event.DataSchema()` for `dataschema` and `schemaurl` alike, so
    a Trigger written for 1.0 also matches a 0.3 event, and the other way round."""
    for event in ({**EVENT, "dataschema": "http://s"}, {**EVENT, "schemaurl": "http://s"}):
        assert trigger.compile_trigger_filter({name: "http://s"}, None).matches(event)
        assert trigger.compile_trigger_filter(None, [{"exact": {name: "http://s"}}]).matches(event)
