"""The one check of pack content's fields (pure: no service needed)."""

from __future__ import annotations

import pytest

from app.engine import parameters, templates
from app.engine.content_checks import (
    MISSING,
    NAME_MESSAGE,
    action_problems,
    rule_problems,
    sensor_problems,
    trigger_problems,
)
from app.engine.pack_files import PackErrors, parse_action, parse_rule
from app.engine.runner_types import MAX_TIMEOUT

ACTION = {"pack": "acme", "name": "hello", "runner_type": "noop"}


def test_a_valid_item_has_no_problems():
    assert action_problems(ACTION) == {}
    assert trigger_problems({"pack": "acme", "name": "ping", "payload_schema": {"type": "object"}}) == {}
    assert sensor_problems({"pack": "acme", "name": "w", "class_name": "W", "entry_point": "sensors/w.py",
                            "trigger_types": ["acme.ping"], "poll_interval": 60}) == {}
    assert rule_problems({"pack": "acme", "name": "r", "trigger": "acme.ping", "action": "acme.hello",
                          "criteria": {"trigger.x": {"type": "eq", "pattern": 1}}}) == {}


@pytest.mark.parametrize(("change", "expected"), [
    ({"name": "bad name"}, {"name": [NAME_MESSAGE]}),
    ({"name": None}, {"name": [MISSING]}),
    ({"timeout": MAX_TIMEOUT + 1}, {"timeout": [f"Must be from 1 to {MAX_TIMEOUT} seconds."]}),
    ({"timeout": True}, {"timeout": ["Must be an integer."]}),
    ({"enabled": "yes"}, {"enabled": ["Must be true or false."]}),
    ({"runner_type": "python-script"}, {"entry_point": ["The python-script runner needs an entry_point."]}),
    ({"parameters": {"n": {"type": "integer", "default": "x"}}},
     {"parameters": {"n": ["'default' does not match the definition: 'x' is not of type 'integer'"]}}),
])
def test_an_action_problem_is_named_by_field(change, expected):
    assert action_problems({**ACTION, **change}) == expected


def test_a_partial_check_looks_only_at_the_fields_given():
    assert action_problems({"timeout": 5}, partial=True) == {}
    assert action_problems({"runner_type": "python-script"}, partial=True) == {}  # the service checks the result
    assert list(action_problems({"timeout": 0}, partial=True)) == ["timeout"]


def test_a_pack_file_gets_the_same_messages_with_its_nesting():
    errors = PackErrors()
    parse_action("actions/a.yaml", "name: a\nrunner_type: noop\ntimeout: 0\nparameters: {n: {type: text}}\n",
                 "acme", errors)
    problems = action_problems({**ACTION, "timeout": 0, "parameters": {"n": {"type": "text"}}})
    assert errors.by_file == {"actions/a.yaml": {"timeout": problems["timeout"],
                                                 "parameters.n": problems["parameters"]["n"]}}
    errors = PackErrors()
    parse_rule("rules/r.yaml", "name: r\ntrigger: {type: nodot}\naction: {ref: acme.a, parameters: []}\n",
               "acme", errors)
    problems = rule_problems({"pack": "acme", "name": "r", "trigger": "nodot", "action": "acme.a",
                              "action_parameters": []})
    assert errors.by_file == {"rules/r.yaml": {"trigger.type": problems["trigger"],
                                               "action.parameters": problems["action_parameters"]}}


def test_one_test_for_a_template():
    assert templates.is_template is parameters.is_template
    assert templates.is_template("{{ x }}") and templates.is_template("{% if x %}") and not templates.is_template(5)
