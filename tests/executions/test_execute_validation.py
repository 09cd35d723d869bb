"""POST /actions/<ref>/execute: parameter validation, unknown and disabled actions, RBAC."""

from __future__ import annotations

from sqlalchemy import func, select

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
    create_action("val.cmd", runner_type="local-shell-cmd")

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
    create_action("val.shell", runner_type="local-shell-cmd")
    for huge in (2147483648, 2**80, 1e308):
        response = api.post("/api/v1/actions/val.shell/execute",
                            json={"parameters": {"cmd": "echo", "timeout": huge}})
        assert response.status_code == 422, huge
        assert "timeout" in response.get_json()["errors"]["parameters"]
    assert executions_count(db_session) == 0
