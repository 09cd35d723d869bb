"""The rules API: a trigger, criteria and an action with parameters, checked when saved."""

from __future__ import annotations

import pytest

from app.models import Rule
from tests.api.helpers import assert_error, assert_hostile_rejected, assert_too_large, refs, total

URL = "/api/v1/rules"
PARAMS_SCHEMA = {"type": "object", "properties": {"interval": {"type": "integer", "minimum": 1}},
                 "required": ["interval"], "additionalProperties": False}


@pytest.fixture
def content(create_trigger, create_action):
    """acme.tick (needs trigger parameter interval) and acme.notify (needs 'to', has 'level')."""
    create_trigger("acme.tick", parameters_schema=PARAMS_SCHEMA)
    create_trigger("acme.hook")
    create_action("acme.notify", parameters={
        "to": {"type": "string", "required": True},
        "level": {"type": "string", "enum": ["info", "warn"], "default": "info"},
        "count": {"type": "integer"},
        "channel": {"type": "string", "default": "ops", "immutable": True},
    })
    create_action("acme.shell", runner_type="local-shell-cmd",
                  parameters={"cmd": {"type": "string"}, "env": {"type": "object"}})
    create_action("acme.fixed", runner_type="local-shell-cmd", timeout=60,
                  parameters={"cmd": {"default": "uptime", "immutable": True}})


def body(**fields):
    return {"pack": "acme", "name": "on_tick", "trigger": "acme.tick", "trigger_parameters": {"interval": 60},
            "action": "acme.notify", "action_parameters": {"to": "ops@example.com"}, **fields}


def test_create_get_update_delete_rule(api, content, rows):
    created = api.post(URL, json=body(
        description="Tell ops", criteria={"trigger.count": {"type": "gt", "pattern": 3}},
        action_parameters={"to": "{{ trigger.owner }}", "level": "warn", "count": "{{ trigger.count }}"}))
    assert created.status_code == 201, created.json
    rule = created.json
    assert rule["ref"] == "acme.on_tick" and rule["enabled"] is True
    assert rule["trigger"] == "acme.tick" and rule["action"] == "acme.notify"
    assert rule["trigger_parameters"] == {"interval": 60}
    assert rule["action_parameters"]["count"] == "{{ trigger.count }}"

    got = api.get(f"{URL}/acme.on_tick")
    assert got.status_code == 200 and got.json == rule

    patched = api.patch(f"{URL}/acme.on_tick", json={"trigger": "acme.hook", "trigger_parameters": {},
                                                      "action": "acme.shell",
                                                      "action_parameters": {"cmd": "echo {{ trigger.body }}"}})
    assert patched.status_code == 200, patched.json
    assert patched.json["trigger"] == "acme.hook" and patched.json["action"] == "acme.shell"
    assert patched.json["description"] == "Tell ops"
    assert patched.json["criteria"] == {"trigger.count": {"type": "gt", "pattern": 3}}

    assert api.delete(f"{URL}/acme.on_tick").status_code == 204
    assert_error(api.get(f"{URL}/acme.on_tick"), 404)
    assert_error(api.delete(f"{URL}/acme.on_tick"), 404)
    assert rows(Rule) == 0


def test_enable_and_disable(api, content):
    api.post(URL, json=body(enabled=False))
    enabled = api.post(f"{URL}/acme.on_tick/enable")
    assert enabled.status_code == 200 and enabled.json["enabled"] is True
    assert enabled.json["trigger"] == "acme.tick"
    disabled = api.post(f"{URL}/acme.on_tick/disable")
    assert disabled.status_code == 200 and disabled.json["enabled"] is False
    assert api.get(f"{URL}/acme.on_tick").json["enabled"] is False
    assert_error(api.post(f"{URL}/acme.nope/enable"), 404)
    assert_error(api.post(f"{URL}/acme.nope/disable"), 404)


@pytest.mark.parametrize("fields, field", [
    ({"trigger": None}, "trigger"),
    ({"trigger": "acme.missing"}, "trigger"),
    ({"trigger": "notaref"}, "trigger"),
    ({"trigger": "acme.tick\n"}, "trigger"),
    ({"trigger": 7}, "trigger"),
    ({"action": "acme.missing"}, "action"),
    ({"action": "other.notify"}, "action"),
    ({"action": ["acme.notify"]}, "action"),
    ({"pack": "missing"}, "pack"),
    ({"name": "bad name!"}, "name"),
    ({"criteria": {"trigger.x": {"type": "frobnicates", "pattern": 1}}}, "criteria"),
    ({"criteria": {"trigger.x": {"type": "equals"}}}, "criteria"),
    ({"criteria": {"trigger.x": {"type": "regex", "pattern": "("}}}, "criteria"),
    ({"criteria": {"payload.x": {"type": "equals", "pattern": 1}}}, "criteria"),
    ({"criteria": {"trigger.x": "equals"}}, "criteria"),
    ({"criteria": {"trigger.x": {"type": "equals", "pattern": 1, "extra": 2}}}, "criteria"),
    ({"criteria": ["trigger.x"]}, "criteria"),
    ({"action_parameters": {"to": "a", "nope": 1}}, "action_parameters"),
    ({"action_parameters": {"to": 5}}, "action_parameters"),
    ({"action_parameters": {"to": "a", "level": "loud"}}, "action_parameters"),
    ({"action_parameters": {"to": "a", "channel": "dev"}}, "action_parameters"),
    ({"action_parameters": {}}, "action_parameters"),
    ({"action_parameters": "to=a"}, "action_parameters"),
    ({"trigger_parameters": {}}, "trigger_parameters"),
    ({"trigger_parameters": {"interval": 0}}, "trigger_parameters"),
    ({"trigger_parameters": {"interval": "{{ 5 }}"}}, "trigger_parameters"),
    ({"trigger_parameters": {"interval": 5, "other": 1}}, "trigger_parameters"),
    ({"enabled": "yes please"}, "enabled"),
    ({"id": 1}, "id"),
])
def test_invalid_rule_is_422_naming_the_field(api, content, rows, fields, field):
    assert_error(api.post(URL, json=body(**fields)), 422, field)
    assert rows(Rule) == 0


def test_error_details_name_the_problem(api, content):
    errors = assert_error(api.post(URL, json=body(
        trigger="acme.missing")), 422)["errors"]
    assert errors == {"trigger": ["Trigger 'acme.missing' does not exist."]}
    # The rule's own fields are checked first (as in a pack file), then how it fits its action.
    errors = assert_error(api.post(URL, json=body(
        criteria={"trigger.a": {"type": "nope", "pattern": 1}, "trigger.b": {"type": "eq", "pattern": 1}},
        action_parameters={"level": 3, "bogus": True})), 422)["errors"]
    assert set(errors) == {"criteria"}
    assert list(errors["criteria"]) == ["trigger.a"] and "Unknown operator" in errors["criteria"]["trigger.a"][0]
    errors = assert_error(api.post(URL, json=body(action_parameters={"level": 3, "bogus": True})), 422)["errors"]
    assert set(errors) == {"action_parameters"}
    assert errors["action_parameters"]["bogus"] == ["Unknown parameter."]
    assert errors["action_parameters"]["to"] == ["Missing required parameter."]
    assert "level" in errors["action_parameters"]


def test_runner_parameters_are_rule_parameters(api, content):
    """Runner parameters the action declares (acme.shell's cmd, env) are rule parameters."""
    ok = api.post(URL, json=body(action="acme.shell", action_parameters={"cmd": "date", "env": {"A": "1"}}))
    assert ok.status_code == 201, ok.json
    assert_error(api.post(URL, json=body(name="r2", action="acme.shell", action_parameters={"env": "A=1"})),
                 422, "action_parameters")


@pytest.mark.parametrize(("action", "parameters", "name", "part"), [
    ("acme.fixed", {"env": {"A": "1"}}, "env", "'env' is a parameter of the local-shell-cmd runner that action "
                                               "acme.fixed does not expose."),
    ("acme.fixed", {"cwd": "/"}, "cwd", "'cwd' is a parameter of the local-shell-cmd runner"),
    ("acme.shell", {"cwd": "{{ trigger.dir }}"}, "cwd", "does not expose"),
    ("acme.fixed", {"timeout": 61}, "timeout", "'timeout' may be at most 60 seconds for action acme.fixed"),
    ("acme.shell", {"env": {"BASH_ENV": "{{ trigger.file }}"}}, "env", "'BASH_ENV' changes how a shell"),
    ("acme.shell", {"env": {"LD_PRELOAD": "/tmp/x.so"}}, "env", "'LD_PRELOAD' changes how a shell"),
    ("acme.shell", {"env": {"PYTHONWARNINGS": "x"}}, "env", "'PYTHONWARNINGS' changes how a shell"),
    ("acme.shell", {"env": {"BASH_FUNC_x%%": "() { id; }"}}, "env", "'BASH_FUNC_x%%' changes how a shell"),
])
def test_a_rule_sets_only_what_a_caller_may(api, content, rows, action, parameters, name, part):
    response = api.post(URL, json=body(action=action, action_parameters=parameters))

    errors = assert_error(response, 422, "action_parameters")["errors"]["action_parameters"]
    assert list(errors) == [name] and part in errors[name][0]
    assert rows(Rule) == 0


def test_a_rule_change_is_held_to_the_same_rule(api, content, rows):
    assert api.post(URL, json=body(action="acme.shell", action_parameters={"cmd": "date"})).status_code == 201

    response = api.patch(f"{URL}/acme.on_tick", json={"action_parameters": {"cmd": "date", "env": {"ENV": "/x"}}})
    assert "'ENV'" in assert_error(response, 422, "action_parameters")["errors"]["action_parameters"]["env"][0]
    response = api.patch(f"{URL}/acme.on_tick", json={"action": "acme.fixed"})  # keeps cmd, which is immutable there
    assert assert_error(response, 422, "action_parameters")["errors"]["action_parameters"] == {
        "cmd": ["This parameter is immutable."]}
    assert api.get(f"{URL}/acme.on_tick").json["action"] == "acme.shell"


def test_a_rule_may_template_env_values_and_set_timeout_within_the_cap(api, content):
    response = api.post(URL, json=body(action="acme.fixed", action_parameters={"timeout": 60}))
    assert response.status_code == 201, response.json
    response = api.post(URL, json=body(name="r2", action="acme.shell", action_parameters={
        "cmd": "deploy", "env": {"REF": "{{ trigger.ref }}", "COUNT": 2}, "timeout": "{{ trigger.t }}"}))
    assert response.status_code == 201, response.json


def test_a_broken_stored_trigger_schema_is_a_422_not_a_crash(api, content, create_trigger, rows):
    """Trigger rows written without the API's checks (old data, direct SQL) must not crash rules."""
    create_trigger("acme.odd", parameters_schema={"type": "thing", "properties": {"a": {"pattern": "("}}})
    body_ = assert_error(api.post(URL, json=body(trigger="acme.odd", trigger_parameters={"a": "x"})),
                         422, "trigger_parameters")
    assert "cannot be used" in body_["errors"]["trigger_parameters"][0]
    assert rows(Rule) == 0


def test_duplicate_ref_is_409(api, content, rows):
    assert api.post(URL, json=body()).status_code == 201
    assert_error(api.post(URL, json=body()), 409, "ref")
    assert rows(Rule) == 1


def test_update_checks_what_changes(api, content, create_action, db_session):
    api.post(URL, json=body())
    assert_error(api.patch(f"{URL}/acme.nope", json={"enabled": False}), 404)
    # A new action re-checks the stored parameters against it ('to' is unknown to acme.shell).
    assert_error(api.patch(f"{URL}/acme.on_tick", json={"action": "acme.shell"}), 422, "action_parameters")
    # A new trigger re-checks the stored trigger parameters (acme.hook has no schema: anything goes).
    assert api.patch(f"{URL}/acme.on_tick", json={"trigger": "acme.hook"}).status_code == 200
    assert_error(api.patch(f"{URL}/acme.on_tick", json={"trigger": "acme.tick", "trigger_parameters": {}}), 422,
                 "trigger_parameters")
    assert_error(api.patch(f"{URL}/acme.on_tick", json={"criteria": {"trigger.a": {"type": "?"}}}), 422, "criteria")
    assert_error(api.patch(f"{URL}/acme.on_tick", json={"action": "x.missing"}), 422, "action")
    assert_error(api.patch(f"{URL}/acme.on_tick", json={"pack": "other"}), 422, "pack")
    rule = api.get(f"{URL}/acme.on_tick").json
    assert rule["action"] == "acme.notify" and rule["criteria"] == {} and rule["trigger"] == "acme.hook"

    # The action later gains a required parameter: the rule is now incomplete, but it can still
    # be described and disabled, and fixed by giving the parameter.
    from app.services.actions import get_action, update_action

    update_action(get_action("acme.notify"), {"parameters": {"to": {"type": "string", "required": True},
                                                             "subject": {"type": "string", "required": True}}})
    db_session.commit()
    assert api.patch(f"{URL}/acme.on_tick", json={"enabled": False, "description": "broken"}).status_code == 200
    assert_error(api.patch(f"{URL}/acme.on_tick", json={"action_parameters": {"to": "x"}}), 422, "action_parameters")
    fixed = api.patch(f"{URL}/acme.on_tick", json={"action_parameters": {"to": "x", "subject": "{{ trigger.s }}"}})
    assert fixed.status_code == 200, fixed.json


def test_list_filters_search_sort_and_pages(api, content, create_rule):
    create_rule("acme.b_rule", trigger="acme.tick", action="acme.notify")
    create_rule("acme.bxrule", trigger="acme.hook", action="acme.shell", enabled=False)
    create_rule("ops.alpha", trigger="acme.hook", action="acme.notify")
    assert refs(api.get(URL)) == ["acme.b_rule", "acme.bxrule", "ops.alpha"]
    assert refs(api.get(f"{URL}?trigger=acme.hook")) == ["acme.bxrule", "ops.alpha"]
    assert refs(api.get(f"{URL}?action=acme.notify")) == ["acme.b_rule", "ops.alpha"]
    assert refs(api.get(f"{URL}?action=acme.notify&trigger=acme.hook")) == ["ops.alpha"]
    assert refs(api.get(f"{URL}?trigger=no.such")) == []
    assert refs(api.get(f"{URL}?enabled=false")) == ["acme.bxrule"]
    assert refs(api.get(f"{URL}?pack=ops")) == ["ops.alpha"]
    assert refs(api.get(f"{URL}?q=b_")) == ["acme.b_rule"]
    assert refs(api.get(f"{URL}?sort=-ref")) == ["ops.alpha", "acme.bxrule", "acme.b_rule"]
    assert refs(api.get(f"{URL}?sort=pack&page=2&page_size=2")) == ["ops.alpha"]
    assert total(api.get(f"{URL}?page_size=1")) == 3
    assert api.get(f"{URL}?page=3&page_size=2").json == []
    assert_error(api.get(f"{URL}?page=0"), 422, "page")
    assert_error(api.get(f"{URL}?page_size=101"), 422, "page_size")
    assert_error(api.get(f"{URL}?sort=criteria"), 422, "sort")
    assert_error(api.get(f"{URL}?trigger=a%00.b"), 422, "trigger")


def test_hostile_bodies_never_5xx(api, content, rows):
    assert_hostile_rejected(api, "POST", URL, body(), lambda: rows(Rule))
    assert api.post(URL, json=body()).status_code == 201
    assert_hostile_rejected(api, "PATCH", f"{URL}/acme.on_tick", {}, lambda: rows(Rule))
    nul = body(name="nul", action_parameters={"to": "a\u0000b"})
    assert_error(api.post(URL, json=nul), 422, "action_parameters")
    assert_error(api.post(URL, json=body(name="nul2", trigger="acme.ti\u0000ck")), 422, "trigger")
    assert rows(Rule) == 1


def test_body_over_the_limit_is_413(api, app, content, rows):
    assert_too_large(api, "POST", URL, app.config["MAX_BODY_BYTES"], lambda: rows(Rule))


def test_permissions(anonymous, client_as, scoped_client, content, create_rule):
    create_rule("other.rule", trigger="acme.hook", action="acme.notify")
    assert_error(anonymous.get(URL), 401)
    viewer = client_as("viewer")
    assert refs(viewer.get(URL)) == ["other.rule"]
    assert_error(viewer.post(URL, json=body()), 403)
    assert_error(viewer.post(f"{URL}/other.rule/disable"), 403)

    # rules:create alone is not enough: a rule runs its action, so it needs actions:execute too.
    no_execute = scoped_client({"rules:create": "acme", "rules:view": "acme"})
    assert_error(no_execute.post(URL, json=body()), 403)
    author = scoped_client([("rules:create", "acme"), ("rules:view", "acme"), ("rules:update", "acme"),
                            ("actions:execute", "acme")])
    assert author.post(URL, json=body()).status_code == 201
    assert refs(author.get(URL)) == ["acme.on_tick"]
    assert_error(author.get(f"{URL}/other.rule"), 403)
    assert_error(author.post(URL, json=body(pack="other")), 403)
    assert author.post(f"{URL}/acme.on_tick/disable").status_code == 200

    updater = scoped_client({"rules:update": "acme"})
    assert updater.patch(f"{URL}/acme.on_tick", json={"description": "ok"}).status_code == 200
    assert_error(updater.patch(f"{URL}/acme.on_tick", json={"action_parameters": {"to": "me"}}), 403)
