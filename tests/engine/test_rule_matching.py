"""The pure matcher: StackStorm's operators and search, any/all groups, paths, hostile input."""

from __future__ import annotations

import time

import pytest

from app.engine.criteria_checks import criteria_errors
from app.engine.payload_paths import lookup
from app.engine.rule_matching import match_criteria
from app.engine.trigger_aliases import canonical_trigger_ref
from app.engine.trigger_parameters import trigger_parameters_match, webhook_source

ISSUE = {"fields": [{"field_name": "Status", "to_value": "Approved"},
                    {"field_name": "Assignee", "to_value": "ada"}]}


def search(condition: str, **pattern) -> dict:
    return {"trigger.fields": {"type": "search", "condition": condition, "pattern": {
        f"item.{key}": {"type": "equals", "pattern": value} for key, value in pattern.items()}}}


@pytest.mark.parametrize("criteria, expected", [
    # any: some item meets every nested criterion.
    (search("any", field_name="Status", to_value="Approved"), True),
    (search("any", field_name="Status", to_value="ada"), False),
    # all: every item meets every nested criterion.
    (search("all", field_name="Status", to_value="Approved"), False),
    # any2any: some item meets some criterion.
    (search("any2any", field_name="Nope", to_value="ada"), True),
    (search("any2any", field_name="Nope", to_value="nobody"), False),
    # all2any: every item meets some criterion.
    (search("all2any", field_name="Status", to_value="ada"), True),
    (search("all2any", field_name="Status", to_value="nobody"), False),
])
def test_search_conditions_follow_stackstorm(criteria, expected):
    assert criteria_errors(criteria) == {}
    assert match_criteria(criteria, ISSUE).matched is expected


def test_search_on_an_empty_list_holds_for_all_and_not_for_any():
    assert match_criteria(search("all", field_name="Status"), {"fields": []}).matched is True
    assert match_criteria(search("any", field_name="Status"), {"fields": []}).matched is False


@pytest.mark.parametrize("value", [None, 5, True, "Status"])
def test_search_on_something_not_a_list_does_not_match(value):
    assert match_criteria(search("any", field_name="Status"), {"fields": value}).matched is False
    assert match_criteria(search("any", field_name="Status"), {"other": 1}).matched is False


def test_search_treats_an_object_as_a_list_of_one_and_text_as_its_characters():
    assert match_criteria(search("any", field_name="Status"), {"fields": {"field_name": "Status"}}).matched is True
    assert match_criteria(search("all", field_name="Nope"), {"fields": {"field_name": "Status"}}).matched is False
    letters = {"trigger.code": {"type": "search", "condition": "any", "pattern": {
        "item": {"type": "equals", "pattern": "x"}}}}
    assert criteria_errors(letters) == {}
    assert match_criteria(letters, {"code": "axb"}).matched is True
    assert match_criteria(letters, {"code": "ab"}).matched is False


def test_labels_give_one_path_several_criteria():
    criteria = {"trigger.count#low": {"type": "gt", "pattern": 3}, "trigger.count#high": {"type": "lt", "pattern": 10},
                "trigger.fields": {"type": "search", "condition": "any", "pattern": {
                    "item.to_value#1": {"type": "startswith", "pattern": "App"},
                    "item.to_value#2": {"type": "endswith", "pattern": "ved"}}}}
    assert criteria_errors(criteria) == {}
    assert match_criteria(criteria, {"count": 5, **ISSUE}).matched is True
    assert match_criteria(criteria, {"count": 12, **ISSUE}).matched is False
    assert criteria_errors({"#trigger.count": {"type": "eq", "pattern": 1}})


def test_criteria_never_match_an_empty_payload():
    criteria = {"trigger.x": {"type": "nexists"}}
    assert match_criteria(criteria, {"y": 1}).matched is True
    for empty in ({}, None):
        verdict = match_criteria(criteria, empty)
        assert verdict.matched is False and "empty" in verdict.checks[0].reason
    assert match_criteria({}, {}).matched is True


def test_a_missing_path_is_null_for_every_operator():
    assert match_criteria({"trigger.env": {"type": "nequals", "pattern": "prod"}}, {"other": 1}).matched is True
    assert match_criteria({"trigger.env": {"type": "nin", "pattern": ["prod"]}}, {"other": 1}).matched is True
    assert match_criteria({"trigger.env": {"type": "exists"}}, {"env": None}).matched is False
    assert match_criteria({"trigger.env": {"type": "nexists"}}, {"env": None}).matched is True
    assert match_criteria({"trigger.env": {"type": "gt", "pattern": 1}}, {"other": 1}).matched is False


def test_a_lone_template_pattern_keeps_the_value_type():
    assert match_criteria({"trigger.n": {"type": "equals", "pattern": "{{ trigger.limit }}"}},
                          {"n": 5, "limit": 5}).matched is True
    assert match_criteria({"trigger.n": {"type": "gt", "pattern": "{{ trigger.limit }}"}},
                          {"n": 5, "limit": 3}).matched is True
    assert match_criteria({"trigger.n": {"type": "in", "pattern": "{{ trigger.allowed }}"}},
                          {"n": 5, "allowed": [4, 5]}).matched is True
    # Text around the expression makes the pattern text.
    assert match_criteria({"trigger.s": {"type": "equals", "pattern": "v{{ trigger.n }}"}},
                          {"s": "v5", "n": 5}).matched is True


def test_patterns_inside_a_search_are_rendered_over_the_item():
    criteria = {"trigger.pairs": {"type": "search", "condition": "all", "pattern": {
        "item.a": {"type": "equals", "pattern": "{{ item.b }}"}}}}
    assert match_criteria(criteria, {"pairs": [{"a": 1, "b": 1}, {"a": "x", "b": "x"}]}).matched is True
    assert match_criteria(criteria, {"pairs": [{"a": 1, "b": 2}]}).matched is False


def test_search_items_may_be_searched_again():
    payload = {"teams": [{"members": [{"name": "ada"}]}, {"members": []}]}
    criteria = {"trigger.teams": {"type": "search", "condition": "any", "pattern": {
        "item.members": {"type": "search", "condition": "any", "pattern": {
            "item.name": {"type": "equals", "pattern": "ada"}}}}}}
    assert criteria_errors(criteria) == {}
    assert match_criteria(criteria, payload).matched is True


@pytest.mark.parametrize("criteria, fragment", [
    ({"trigger.x": {"type": "search", "pattern": "abc"}}, "condition"),
    ({"trigger.x": {"type": "search", "condition": "any", "pattern": "abc"}}, "use 'regex'"),
    ({"trigger.x": {"type": "search", "condition": "some", "pattern": {"item.a": {"type": "eq", "pattern": 1}}}},
     "condition"),
    ({"trigger.x": {"type": "search", "condition": "any", "pattern": {"trigger.a": {"type": "eq", "pattern": 1}}}},
     "item.body.status"),
    ({"any": []}, "non-empty list"),
    ({"any": [{"trigger.a": {"type": "nope", "pattern": 1}}]}, "Unknown operator"),
    ({"trigger.a": {"type": "regex", "pattern": "(?:a{65535}){65535}"}}, "not a valid regular expression"),
])
def test_invalid_search_and_groups_are_refused(criteria, fragment):
    errors = criteria_errors(criteria)
    assert errors and any(fragment in message for messages in errors.values() for message in messages), errors


def test_any_and_all_groups_nest():
    criteria = {"trigger.env": {"type": "equals", "pattern": "prod"},
                "any": [{"trigger.level": {"type": "equals", "pattern": "error"}},
                        {"all": [{"trigger.level": {"type": "equals", "pattern": "warning"}},
                                 {"trigger.count": {"type": "gt", "pattern": 10}}]}]}
    assert criteria_errors(criteria) == {}
    assert match_criteria(criteria, {"env": "prod", "level": "error"}).matched is True
    assert match_criteria(criteria, {"env": "prod", "level": "warning", "count": 11}).matched is True
    assert match_criteria(criteria, {"env": "prod", "level": "warning", "count": 3}).matched is False
    assert match_criteria(criteria, {"env": "dev", "level": "error"}).matched is False


def test_bracketed_paths_reach_keys_with_dots_and_dashes():
    payload = {"headers": {"X-GitHub-Event": "push", "a.b": 1}, "items": [[1, 2], [3]]}
    assert lookup(payload, "trigger.headers['X-GitHub-Event']") == "push"
    assert lookup(payload, 'trigger.headers["a.b"]') == 1
    assert lookup(payload, "trigger.items.0.1") == 2
    assert lookup(payload, "trigger.items[1][0]") == 3
    assert criteria_errors({"trigger.headers['X-GitHub-Event']": {"type": "eq", "pattern": "push"}}) == {}
    assert criteria_errors({"trigger..x": {"type": "eq", "pattern": 1}})


def test_every_check_is_explained_with_the_value_found():
    verdict = match_criteria({"trigger.body.env": {"type": "equals", "pattern": "prod"},
                              "trigger.body.gone": {"type": "equals", "pattern": 1}}, {"body": {"env": "dev"}})
    shown = [check.as_dict() for check in verdict.checks]
    assert verdict.matched is False
    assert shown[0] == {"path": "trigger.body.env", "operator": "equals", "pattern": "prod", "found": True,
                        "value": "dev", "matched": False}
    assert shown[1]["found"] is False and shown[1]["reason"] == "no value at this path (seen as null)"


def test_patterns_may_be_templates_over_the_payload_in_the_sandbox():
    criteria = {"trigger.b": {"type": "equals", "pattern": "{{ trigger.a }}"}}
    assert match_criteria(criteria, {"a": "x", "b": "x"}).matched is True
    hostile = {"trigger.b": {"type": "equals", "pattern": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}}
    verdict = match_criteria(hostile, {"b": "x"})
    assert verdict.matched is False and "could not be rendered" in verdict.checks[0].reason


@pytest.mark.parametrize("pattern, text", [
    (r"^(a|a)*$", "a" * 40 + "b"),
    (r"^(a+)+$", "a" * 5000 + "!"),
])
def test_a_hostile_regex_is_refused_quickly(pattern, text):
    criteria = {"trigger.s": {"type": "regex", "pattern": pattern},
                "trigger.t": {"type": "iregex", "pattern": pattern}}
    started = time.monotonic()
    verdict = match_criteria(criteria, {"s": text, "t": text})
    assert time.monotonic() - started < 1.5
    assert verdict.matched is False
    # Whichever way the regex engine gets there, a pattern that backtracks says so.
    assert all(check.reason is None or "ran out of time" in check.reason for check in verdict.checks)


def test_a_backtracking_regex_is_reported_as_out_of_time():
    verdict = match_criteria({"trigger.s": {"type": "regex", "pattern": r"^(a|a)*$"}}, {"s": "a" * 40 + "b"})
    assert verdict.matched is False and "ran out of time" in verdict.checks[0].reason


def test_regex_keeps_python_syntax_with_lookarounds():
    criteria = {"trigger.s": {"type": "regex", "pattern": r"deploy(?!-test)"}}
    assert match_criteria(criteria, {"s": "deploy-prod"}).matched is True
    assert match_criteria(criteria, {"s": "deploy-test"}).matched is False


@pytest.mark.parametrize("alias, ref", [
    ("core.st2.webhook", "core.webhook"), ("core.st2.IntervalTimer", "core.interval_timer"),
    ("core.st2.CronTimer", "core.cron_timer"), ("core.st2.DateTimer", "core.date_timer"),
    ("core.st2.generic.actiontrigger", "core.execution_finished"), ("acme.thing", "acme.thing"),
])
def test_stackstorm_trigger_names_are_aliases(alias, ref):
    assert canonical_trigger_ref(alias) == ref


class _Row:
    def __init__(self, **fields):
        self.__dict__.update(fields)


def test_a_webhook_event_is_only_for_the_rules_on_its_url():
    event = _Row(source=webhook_source("/deploy/"), trigger_ref="core.webhook")
    assert trigger_parameters_match(_Row(trigger_parameters={"url": "deploy"}), event)
    assert not trigger_parameters_match(_Row(trigger_parameters={"url": "other"}), event)
    assert not trigger_parameters_match(_Row(trigger_parameters={}), event)


def test_a_timer_event_is_only_for_the_rules_with_its_parameters():
    from app.engine.timers import timer_source

    event = _Row(source=timer_source("core.interval_timer", {"unit": "seconds", "delta": 5}),
                 trigger_ref="core.interval_timer")
    assert trigger_parameters_match(_Row(trigger_parameters={"delta": 5, "unit": "seconds"}), event)
    assert not trigger_parameters_match(_Row(trigger_parameters={"unit": "seconds", "delta": 6}), event)


def test_an_event_from_elsewhere_is_for_every_rule_on_its_trigger():
    event = _Row(source="api", trigger_ref="core.webhook")
    assert trigger_parameters_match(_Row(trigger_parameters={"url": "deploy"}), event)
