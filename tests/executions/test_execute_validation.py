"""POST /actions/<ref>/execute: parameter validation, unknown and disabled actions, RBAC."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.engine.caller_parameters import env_errors
from app.models import Execution

SCHEMA = {
    "count": {"type": "integer", "minimum": 1, "required": True},
    "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
    "mode": {"type": "string", "default": "safe", "immutable": True},
    "note": {"type": "string"},
}


def executions_count(db_session) -> int:
    return db_session.scalar(select(func.count()).select_from(Execution))


def test_defaults_are_applied_and_the_execution_is_requested(api, create_action, db_session):
    create_action("val.act", parameters=SCHEMA)

    response = api.post("/api/v1/actions/val.act/execute", json={"parameters": {"count": 2}})

    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "requested"
    assert body["parameters"] == {"count": 2, "color": "red", "mode": "safe"}
    assert body["timeout"] == 600  # EXECUTION_DEFAULT_TIMEOUT
    assert response.headers["X-Request-ID"] == body["request_id"]


def test_missing_required_parameter_is_named(api, create_action, db_session):
    create_action("val.act", parameters=SCHEMA)

    response = api.post("/api/v1/actions/val.act/execute", json={"parameters": {}})

    assert response.status_code == 422
    body = response.get_json()
    assert body["errors"]["parameters"] == {"count": ["Missing required parameter."]}
    assert "count" in body["message"]
    assert executions_count(db_session) == 0


def test_wrong_type_enum_unknown_and_immutable_are_each_named(api, create_action, db_session):
    create_action("val.act", parameters=SCHEMA)

    response = api.post("/api/v1/actions/val.act/execute", json={
        "parameters": {"count": "two", "color": "green", "mode": "fast", "extra": 1}})

    assert response.status_code == 422
    errors = response.get_json()["errors"]["parameters"]
    assert set(errors) == {"count", "color", "mode", "extra"}
    assert errors["mode"] == ["This parameter is immutable."]
    assert errors["extra"] == ["Unknown parameter."]
    assert executions_count(db_session) == 0


def test_body_must_be_an_object_with_parameters(api, create_action):
    create_action("val.act", parameters=SCHEMA)

    response = api.post("/api/v1/actions/val.act/execute", json={"params": {"count": 1}})

    assert response.status_code == 422
    assert set(response.get_json()) == {"code", "status", "message", "errors"}


def test_unknown_action_is_404_and_disabled_action_is_409(api, create_action):
    create_action("val.off", enabled=False)

    assert api.post("/api/v1/actions/val.nope/execute", json={}).status_code == 404
    response = api.post("/api/v1/actions/val.off/execute", json={})
    assert response.status_code == 409
    assert "disabled" in response.get_json()["message"]


def test_action_timeout_and_runner_timeout_parameter_set_the_execution_timeout(api, create_action):
    create_action("val.slow", timeout=42)
    create_action("val.cmd", runner_type="local-shell-cmd", parameters={"cmd": {"type": "string"}})

    assert api.post("/api/v1/actions/val.slow/execute", json={}).get_json()["timeout"] == 42
    response = api.post("/api/v1/actions/val.cmd/execute", json={"parameters": {"cmd": "true", "timeout": 7}})
    assert response.get_json()["timeout"] == 7


def test_execute_needs_the_permission_on_the_pack(app, create_action, create_identity, token_for, db_session):
    from app.models import PermissionGrant, Role
    from app.services.rbac import assign_role
    from tests.factories import ApiClient

    create_action("mine.act")
    create_action("theirs.act")
    role = Role(name="mine-runner", description="")
    db_session.add(role)
    db_session.flush()
    db_session.add(PermissionGrant(role_id=role.id, permission="actions:execute", pack="mine"))
    identity = create_identity("runner")
    assign_role(identity, role)
    db_session.commit()
    client = ApiClient(app.test_client(), token_for(identity))

    assert client.post("/api/v1/actions/mine.act/execute", json={}).status_code == 201
    assert client.post("/api/v1/actions/theirs.act/execute", json={}).status_code == 403
    assert ApiClient(app.test_client()).post("/api/v1/actions/mine.act/execute", json={}).status_code == 401


def test_action_metadata_sets_runner_parameter_defaults_and_immutability(api, create_action):
    create_action("val.fixed", runner_type="local-shell-cmd", parameters={
        "cmd": {"default": "uptime", "immutable": True},
        "timeout": {"default": 9},
        "cwd": {"default": "/tmp"},
    })

    overridden = api.post("/api/v1/actions/val.fixed/execute", json={"parameters": {"cmd": "rm -rf /"}})
    assert overridden.status_code == 422
    assert overridden.get_json()["errors"]["parameters"] == {"cmd": ["This parameter is immutable."]}
    created = api.post("/api/v1/actions/val.fixed/execute", json={}).get_json()
    assert created["parameters"] == {"cmd": "uptime", "timeout": 9, "cwd": "/tmp"}
    assert created["timeout"] == 9
    assert created["status"] == "requested"


def test_a_ref_with_a_nul_byte_is_404(api, db_session):
    response = api.post("/api/v1/actions/a%00b/execute", json={"parameters": {}})
    assert response.status_code == 404
    assert response.get_json()["code"] == 404


def test_a_runner_timeout_beyond_a_week_is_named(api, create_action, db_session):
    create_action("val.shell", runner_type="local-shell-cmd", parameters={"cmd": {"type": "string"}})
    for huge in (2147483648, 2**80, 1e308):
        response = api.post("/api/v1/actions/val.shell/execute",
                            json={"parameters": {"cmd": "echo", "timeout": huge}})
        assert response.status_code == 422, huge
        assert "timeout" in response.get_json()["errors"]["parameters"]
    assert executions_count(db_session) == 0


# What a caller may set: runner parameters only where the action declares them, timeout
# within the action's cap, no startup names in env (app/engine/caller_parameters.py).

SHELL = {"message": {"type": "string"}, "cmd": {"default": "echo {{ message }}", "immutable": True}}


def refused(response, name: str) -> list[str]:
    """The 422 in the one error shape, naming ``name``; its messages."""
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"} and body["code"] == 422
    assert name in body["message"]
    return body["errors"]["parameters"][name]


@pytest.mark.parametrize(("name", "value"), [("env", {"A": "1"}), ("cwd", "/"), ("cmd", "id"), ("timeout", 5)])
def test_a_runner_parameter_the_action_does_not_declare_is_refused(api, create_action, db_session, name, value):
    create_action("val.echo", runner_type="local-shell-cmd", parameters=SHELL)

    response = api.post("/api/v1/actions/val.echo/execute", json={"parameters": {"message": "hi", name: value}})

    if name == "timeout":  # always settable, as in StackStorm
        assert response.status_code == 201
        return
    message = "immutable" if name == "cmd" else f"'{name}' is a parameter of the local-shell-cmd runner " \
        "that action val.echo does not expose."
    assert message in refused(response, name)[0]
    assert executions_count(db_session) == 0


@pytest.mark.parametrize("name", ["url", "headers", "method", "body", "password"])
def test_http_runner_parameters_need_declaring_too(api, create_action, db_session, name):
    create_action("val.get", runner_type="http-request",
                  parameters={"url": {"default": "https://example.com/status", "immutable": True}})
    value = {"url": "http://169.254.169.254/", "headers": {"X": "1"}, "method": "POST", "body": "x",
             "password": "hunter2"}[name]

    messages = refused(api.post("/api/v1/actions/val.get/execute", json={"parameters": {name: value}}), name)

    assert "hunter2" not in str(messages)
    assert executions_count(db_session) == 0


def test_declared_runner_parameters_are_settable(api, create_action):
    create_action("val.open", runner_type="local-shell-cmd", parameters={
        "cmd": {"type": "string", "required": True}, "cwd": {"type": "string"}, "env": {"type": "object"}})

    response = api.post("/api/v1/actions/val.open/execute", json={"parameters": {
        "cmd": "make", "cwd": "/srv", "env": {"GREETING": "hi", "COUNT": 3, "DEBUG": True}}})

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["parameters"] == {"cmd": "make", "cwd": "/srv",
                                                 "env": {"GREETING": "hi", "COUNT": 3, "DEBUG": True}}


@pytest.mark.parametrize("name", ["BASH_ENV", "ENV", "BASH_FUNC_x%%", "LD_PRELOAD", "PYTHONWARNINGS",
                                  "PYTHONPATH", "PERL5OPT", "NODE_OPTIONS", "bash_env", "PATH",
                                  "PATCHBAY_RUN_TOKEN"])
def test_startup_environment_names_are_refused(api, create_action, db_session, name):
    create_action("val.open", runner_type="local-shell-cmd", parameters={
        "cmd": {"type": "string"}, "env": {"type": "object"}})

    response = api.post("/api/v1/actions/val.open/execute",
                        json={"parameters": {"cmd": "true", "env": {"OK": "1", name: "/tmp/x"}}})

    (message,) = refused(response, "env")
    assert repr(name) in message and "only the action's metadata may set it" in message
    assert executions_count(db_session) == 0


@pytest.mark.parametrize(("env", "part"), [
    ({"": "x"}, "'' is not an environment variable name"), ({"A=B": "x"}, "'A=B' is not an environment"),
    ({"A": None}, "must be text"), ({"A": [1]}, "must be text"), ({"A": {"b": 1}}, "must be text"),
])
def test_invalid_environment_names_and_values_are_refused(api, create_action, db_session, env, part):
    create_action("val.open", runner_type="local-shell-cmd", parameters={
        "cmd": {"type": "string"}, "env": {"type": "object"}})

    response = api.post("/api/v1/actions/val.open/execute", json={"parameters": {"cmd": "true", "env": env}})

    assert part in refused(response, "env")[0]
    assert executions_count(db_session) == 0


@pytest.mark.parametrize("env", [{"A\u0000B": "x"}, {"A": "x\u0000y"}])
def test_nul_in_an_environment_name_or_value_is_refused(api, create_action, db_session, env):
    """The API refuses NUL in any text before the parameters are looked at; the check itself
    refuses it too, for values that reach it another way (a rule rendered at enforcement)."""
    create_action("val.open", runner_type="local-shell-cmd", parameters={
        "cmd": {"type": "string"}, "env": {"type": "object"}})

    response = api.post("/api/v1/actions/val.open/execute", json={"parameters": {"cmd": "true", "env": env}})

    assert response.status_code == 422 and "env" in response.get_json()["errors"]["parameters"]
    assert executions_count(db_session) == 0
    assert "NUL" in str(env_errors(env))


def test_the_actions_own_metadata_may_set_startup_names(api, create_action):
    create_action("val.py", runner_type="python-script", entry_point="run.py", parameters={
        "env": {"type": "object", "default": {"PYTHONPATH": "/opt/lib", "LD_LIBRARY_PATH": "/opt/lib"}}})

    response = api.post("/api/v1/actions/val.py/execute", json={})

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["parameters"]["env"] == {"PYTHONPATH": "/opt/lib", "LD_LIBRARY_PATH": "/opt/lib"}
    assert refused(api.post("/api/v1/actions/val.py/execute",
                            json={"parameters": {"env": {"PYTHONPATH": "/tmp"}}}), "env")


@pytest.mark.parametrize(("fields", "cap", "source"), [
    ({"parameters": {"timeout": {"maximum": 100}}, "timeout": 30}, 100, "the maximum of its timeout parameter"),
    ({"timeout": 30}, 30, "its own timeout"),
    ({"parameters": {"timeout": {"default": 45}}}, 45, "the default of its timeout parameter"),
    ({}, 600, "the default execution timeout"),
])
def test_timeout_is_settable_up_to_the_actions_cap(api, create_action, db_session, fields, cap, source):
    create_action("val.t", runner_type="local-shell-cmd",
                  **{**fields, "parameters": {"cmd": {"type": "string"}, **fields.get("parameters", {})}})

    within = api.post("/api/v1/actions/val.t/execute", json={"parameters": {"cmd": "true", "timeout": cap}})
    assert within.status_code == 201, within.get_json()
    assert within.get_json()["timeout"] == cap  # the row's timeout, which the worker enforces
    shorter = api.post("/api/v1/actions/val.t/execute", json={"parameters": {"cmd": "true", "timeout": 5}})
    assert shorter.get_json()["timeout"] == 5

    (message,) = refused(api.post("/api/v1/actions/val.t/execute",
                                  json={"parameters": {"cmd": "true", "timeout": cap + 1}}), "timeout")
    assert message == f"'timeout' may be at most {cap} seconds for action val.t ({source})."
    assert executions_count(db_session) == 2


def test_a_fractional_http_timeout_is_checked_against_the_cap(api, create_action, db_session):
    create_action("val.web", runner_type="http-request", parameters={
        "url": {"type": "string"}, "timeout": {"default": 2.5}})

    ok = api.post("/api/v1/actions/val.web/execute", json={"parameters": {"url": "https://x.test", "timeout": 2.5}})
    assert ok.status_code == 201 and ok.get_json()["timeout"] == 3
    refused(api.post("/api/v1/actions/val.web/execute",
                     json={"parameters": {"url": "https://x.test", "timeout": 2.6}}), "timeout")
    assert executions_count(db_session) == 1


def test_a_rerun_is_held_to_the_same_rule(api, create_action, db_session):
    create_action("val.open", runner_type="local-shell-cmd", timeout=20, parameters={
        "cmd": {"type": "string"}, "env": {"type": "object"}})
    original = api.post("/api/v1/actions/val.open/execute", json={"parameters": {"cmd": "true"}}).get_json()
    db_session.commit()

    for overrides, name in [({"env": {"BASH_ENV": "/tmp/x"}}, "env"), ({"cwd": "/"}, "cwd"),
                            ({"timeout": 21}, "timeout")]:
        refused(api.post(f"/api/v1/executions/{original['id']}/rerun", json={"parameters": overrides}), name)
    assert executions_count(db_session) == 1
    rerun = api.post(f"/api/v1/executions/{original['id']}/rerun", json={"parameters": {"timeout": 19}})
    assert rerun.status_code == 201 and rerun.get_json()["timeout"] == 19
