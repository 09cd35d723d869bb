"""Rules-engine fixtures: a trigger, a shell action and rules made through the API."""

from __future__ import annotations

import pytest

from tests.worker import quiet_broker, wait_for  # noqa: F401 - quiet_broker: a fixture for this package


@pytest.fixture
def deploy_setup(worker_api, make_action):
    """Pack ``demo``: trigger ``demo.deploy`` (payload env, version) and action ``demo.echo``."""
    make_action("demo.echo", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    created = worker_api.post("/api/v1/triggers", json={
        "pack": "demo", "name": "deploy",
        "payload_schema": {"type": "object", "properties": {"env": {"type": "string"},
                                                           "version": {"type": "string"}}}})
    assert created.status_code == 201, created.json
    return worker_api


def make_rule(api, name: str, trigger: str = "demo.deploy", **fields) -> dict:
    body = {"pack": "demo", "name": name, "trigger": trigger, "action": "demo.echo",
            "action_parameters": {"cmd": "echo deployed={{ trigger.version }}"}, **fields}
    answer = api.post("/api/v1/rules", json=body)
    assert answer.status_code == 201, answer.json
    return answer.json


def post_event(api, payload: dict, trigger: str = "demo.deploy") -> int:
    answer = api.post("/api/v1/events", json={"trigger": trigger, "payload": payload})
    assert answer.status_code == 202, answer.json
    return answer.json["id"]


def wait_processed(api, event_id: int, timeout: float = 30) -> dict:
    def done():
        body = api.get(f"/api/v1/events/{event_id}").json
        return body if body["status"] in ("processed", "failed") else None

    return wait_for(done, timeout)


@pytest.fixture
def in_app(app):
    """``with in_app():`` an application context for calling services and tasks in the test
    process (only around those calls: API requests made inside it would share its session)."""
    return app.app_context
