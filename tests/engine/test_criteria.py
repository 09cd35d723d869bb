"""Rule criteria: validation (what the rules API answers 422 to) and operator semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.engine.criteria import MISSING, OPERATORS, evaluate, operator_name
from app.engine.criteria_checks import criteria_errors
from app.engine.payload_paths import lookup


def matches(operator: str, value, pattern=None) -> bool:
    return evaluate({"type": operator, "pattern": pattern}, value, pattern)


@pytest.mark.parametrize("alias, name", [
    ("eq", "equals"), ("EQUALS", "equals"), ("neq", "nequals"), ("lt", "lessthan"), ("gt", "greaterthan"),
    ("ieq", "iequals"), ("in", "inside"), ("nin", "ninside"), ("incontains", "incontains"),
    ("nicontains", "incontains"), ("exist", "exists"), ("Td_Gt", "timediff_gt"),
    ("td_lt", "timediff_lt"), ("td_gt", "timediff_gt"), ("frobnicate", None), (None, None), (["eq"], None),
])
def test_operator_names_and_stackstorm_aliases(alias, name):
    assert operator_name(alias) == name


def test_valid_criteria_have_no_errors():
    criteria = {
        "trigger.body.status": {"type": "equals", "pattern": "down"},
        "trigger.count": {"type": "gt", "pattern": 3},
        "trigger.host": {"type": "regex", "pattern": "^web-[0-9]+$"},
        "trigger.when": {"type": "exists"},
        "trigger.name": {"type": "regex", "pattern": "{{ kv.system.re }}"},
    }
    assert criteria_errors(criteria) == {}
    assert criteria_errors({}) == {}


@pytest.mark.parametrize("criteria, key, fragment", [
    ({"trigger.a": {"type": "resembles", "pattern": 1}}, "trigger.a", "Unknown operator"),
    ({"trigger.a": {"pattern": 1}}, "trigger.a", "Unknown operator"),
    ({"trigger.a": {"type": "contains"}}, "trigger.a", "needs a 'pattern'"),
    ({"trigger.a": {"type": "regex", "pattern": "(unclosed"}}, "trigger.a", "not a valid regular expression"),
    ({"trigger.a": {"type": "iregex", "pattern": "*"}}, "trigger.a", "not a valid regular expression"),
    ({"body.a": {"type": "equals", "pattern": 1}}, "body.a", "paths into the event"),
    ({"trigger.a": ["equals", 1]}, "trigger.a", "must be an object"),
    ({"trigger.a": {"type": "equals", "pattern": 1, "condition": "any"}}, "trigger.a", "Unknown keys: condition"),
])
def test_invalid_criteria_are_named_by_key(criteria, key, fragment):
    errors = criteria_errors(criteria)
    assert list(errors) == [key]
    assert any(fragment in message for message in errors[key]), errors


def test_criteria_must_be_an_object():
    assert "_schema" in criteria_errors(["trigger.a"])
    assert "_schema" in criteria_errors("trigger.a == 1")


def test_lookup_walks_objects_and_lists():
    payload = {"body": {"items": [{"id": 1}, {"id": 2}], "a.b": 3}, "n": None}
    assert lookup(payload, "trigger.body.items.1.id") == 2
    assert lookup(payload, "trigger.body.items.-1.id") == 2
    assert lookup(payload, "trigger.n") is None
    assert lookup(payload, "trigger.body.items.5") is MISSING
    assert lookup(payload, "trigger.nope.deeper") is MISSING
    assert lookup(payload, "trigger") == payload


@pytest.mark.parametrize("operator, value, pattern, expected", [
    ("equals", 5, 5, True), ("equals", "5", 5, False), ("nequals", "a", "b", True),
    ("iequals", "DOWN", "down", True), ("iequals", 1, "1", False),
    ("lessthan", 2, 3, True), ("lessthan", 2.5, 3, True), ("greaterthan", "b", "a", True),
    ("greaterthan", 10**400, 1, True), ("lessthan", [1, 2], [1, 3], True), ("greaterthan", True, 0, True),
    ("matchwildcard", "web-01.example", "web-*", True), ("matchwildcard", "db-01", "web-*", False),
    # StackStorm semantics: regex/iregex search anywhere, matchregex anchors at the start.
    ("regex", "error: disk full", "disk", True), ("regex", "error: disk full", "^disk", False),
    ("regex", "web-12", "^web-[0-9]+$", True), ("iregex", "ERROR here", "error", True),
    ("matchregex", "error: x", "error", True), ("matchregex", "an error", "error", False),
    ("matchregex", "a\nb", "a.b", True), ("regex", "xxabcxx", "abc", True),
    ("contains", "hello world", "lo w", True), ("contains", [1, 2], 2, True), ("contains", 5, 5, False),
    ("ncontains", "hello", "z", True), ("icontains", "Hello", "HELL", True), ("nicontains", "Hello", "x", True),
    ("startswith", "prod-db", "prod", True), ("istartswith", "PROD-db", "prod", True),
    ("endswith", "a.log", ".log", True), ("iendswith", "A.LOG", ".log", True),
    ("inside", "b", ["a", "b"], True), ("inside", "z", "xyz", True), ("ninside", "c", ["a", "b"], True),
    ("exists", 0, None, True), ("exists", False, None, True), ("exists", MISSING, None, False),
    ("nexists", MISSING, None, True), ("contains", {"k": 1}, "k", True), ("inside", 2, [1, 2], True),
])
def test_operators(operator, value, pattern, expected):
    assert matches(operator, value, pattern) is expected


@pytest.mark.parametrize("operator, value, pattern", [
    # StackStorm compares values as they are: numeric text is text, and text against a number
    # raises in Python, so the criterion does not match.
    ("lessthan", "2", 3), ("greaterthan", 10, "9"), ("greaterthan", "x", 1),
    ("gt", {"a": 1}, {"a": 0}), ("lt", None, 1),
    ("iequals", 1, "1"), ("iequals", ["A"], "a"), ("icontains", 5, "5"), ("incontains", 5, "x"),
    ("ncontains", 5, "x"), ("contains", 5, 5), ("contains", "abc", 1),
    ("startswith", 123, "1"), ("istartswith", ["ab"], "a"), ("endswith", "a.log", ["log"]), ("iendswith", None, "x"),
    ("matchwildcard", 5, "*"), ("regex", 5, "5"), ("iregex", ["a"], "a"), ("matchregex", "a", 1),
    ("inside", None, "abc"), ("ninside", None, "abc"), ("ninside", 1, "abc"),
    ("equals", "5", 5), ("equals", "true", True),
])
def test_wrong_types_never_raise_and_do_not_match(operator, value, pattern):
    assert matches(operator, value, pattern) is False


def test_text_that_looks_like_a_number_compares_as_text():
    assert matches("lessthan", "10", "9") is True  # "1" sorts before "9"
    assert matches("greaterthan", "10", "9") is False
    assert matches("lessthan", 10, 9.5) is False and matches("lessthan", 9, 9.5) is True


@pytest.mark.parametrize("operator, pattern, expected", [
    # A missing path is None, as in StackStorm: what holds for None holds for it.
    ("nequals", "x", True), ("ninside", ["a", "b"], True), ("nexists", None, True),
    ("equals", "x", False), ("exists", None, False), ("ninside", "abc", False),
    ("ncontains", "x", False), ("incontains", "x", False), ("lessthan", 1, False), ("greaterthan", 1, False),
])
def test_a_missing_path_is_seen_as_null(operator, pattern, expected):
    assert matches(operator, MISSING, pattern) is expected
    assert matches(operator, None, pattern) is expected


def test_a_missing_path_matches_only_what_holds_for_null():
    holding = {name for name in OPERATORS if name != "search" and matches(name, MISSING, "x")}
    assert holding == {"nequals", "nexists"}


def test_null_is_absent_for_exists_and_nexists():
    assert matches("exists", None) is False and matches("nexists", None) is True
    assert matches("exists", "") is True and matches("nexists", []) is False


def test_a_null_pattern_matches_only_nequals_exists_and_nexists():
    holding = {name for name in OPERATORS if name != "search" and matches(name, "x", None)}
    assert holding == {"nequals", "exists"}
    assert matches("equals", None, None) is False and matches("nequals", None, None) is False


@pytest.mark.parametrize("operator, value, pattern, expected", [
    ("iequals", "ÉTÉ", "été", True), ("equals", "Prod", "prod", False), ("nequals", "Prod", "prod", True),
    ("icontains", "Disk FULL", "full", True), ("contains", "Disk FULL", "full", False),
    ("incontains", "Disk FULL", "full", False), ("ncontains", "Disk FULL", "full", True),
    ("istartswith", "Web-01", "WEB", True), ("startswith", "Web-01", "web", False),
    ("iendswith", "A.Log", ".LOG", True), ("endswith", "A.Log", ".log", False),
    ("matchwildcard", "WEB-01", "web-*", False), ("regex", "ERROR", "error", False),
    ("iregex", "ERROR", "error", True), ("inside", "A", ["a"], False),
])
def test_case_folding(operator, value, pattern, expected):
    assert matches(operator, value, pattern) is expected


def test_timediff_operators():
    recent = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    assert matches("timediff_lt", recent, 60) is True
    assert matches("timediff_gt", old, 3600) is True
    assert matches("timediff_lt", old, 60) is False
    assert matches("timediff_lt", "not a date", 60) is False
    assert matches("timediff_lt", MISSING, 60) is False and matches("timediff_gt", MISSING, 60) is False


def test_timediff_reads_times_as_stackstorm_does():
    naive_recent = (datetime.now(UTC) - timedelta(seconds=30)).replace(tzinfo=None).isoformat()
    assert matches("td_lt", naive_recent, 60) is True  # a time without a zone is UTC
    assert matches("timediff_gt", "Tue, 01 Jul 2014 00:01:01 GMT", 60) is True  # any dateutil format
    assert matches("timediff_gt", "2014-07-01T00:01:01", "60") is True  # a pattern in text is a number
    # A Unix timestamp is not a time StackStorm reads.
    assert matches("td_lt", datetime.now(UTC).timestamp() - 5, 60) is False


@pytest.mark.parametrize("value, pattern", [
    (1e300, 60), (10**30, 60), ("2026-01-01T00:00:00Z", 1e300), ("2026-01-01T00:00:00Z", float("nan")),
    ("2026-01-01T00:00:00Z", "soon"), (True, 5), ([], 5),
])
def test_timediff_never_raises_on_hostile_values(value, pattern):
    assert matches("timediff_lt", value, pattern) in (True, False)
    assert matches("timediff_gt", value, pattern) in (True, False)
