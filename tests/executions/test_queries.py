"""GET /executions (filters, sort, pagination, RBAC), GET by id, stats, cancel errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from app.models import Execution, PermissionGrant, Role
from tests.factories import ApiClient

NOW = datetime.now(UTC)


@pytest.fixture
def history(db_session, create_pack):
    """Executions across two packs, statuses, rules, users and times."""
    create_pack("alpha")
    create_pack("beta")
    rows = []

    def add(ref: str, status: str, minutes_ago: int, **fields) -> Execution:
        execution = Execution(action_ref=ref, pack_name=ref.split(".")[0], runner_type="noop", status=status,
                              parameters={}, created_at=NOW - timedelta(minutes=minutes_ago), **fields)
        db_session.add(execution)
        db_session.flush()
        rows.append(execution)
        return execution

    parent = add("alpha.flow", "running", 50, user="ann")
    add("alpha.step", "succeeded", 40, parent_id=parent.id, root_id=parent.id, user="ann")
    add("alpha.step", "failed", 30, rule_ref="alpha.on_push", user="bob")
    add("alpha.step", "succeeded", 20, rule_ref="alpha.on_push", user="bob")
    add("beta.job", "timeout", 10, user="cid")
    add("beta.job", "succeeded", 60 * 30, user="cid")  # 30 hours ago: outside the stats window
    db_session.commit()
    return rows


def ids(response) -> list[int]:
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()]


def test_list_is_newest_first_and_paginated(api, history):
    response = api.get("/api/v1/executions", query_string={"page_size": 2})

    assert ids(response) == [history[4].id, history[3].id]
    assert json.loads(response.headers["X-Pagination"])["total"] == 6
    assert "result" not in response.get_json()[0]
    page3 = api.get("/api/v1/executions", query_string={"page_size": 2, "page": 3})
    assert ids(page3) == [history[0].id, history[5].id]
    oldest_first = api.get("/api/v1/executions", query_string={"sort": "created_at", "page_size": 1})
    assert ids(oldest_first) == [history[5].id]


@pytest.mark.parametrize("query, expected", [
    ({"status": "succeeded"}, [3, 1, 5]),
    ({"status": "failed,timeout"}, [4, 2]),
    ({"action": "alpha.step"}, [3, 2, 1]),
    ({"pack": "beta"}, [4, 5]),
    ({"rule": "alpha.on_push"}, [3, 2]),
    ({"user": "ann"}, [1, 0]),
    ({"action": "alpha.step", "status": "succeeded"}, [3, 1]),
])
def test_filters(api, history, query, expected):
    assert ids(api.get("/api/v1/executions", query_string=query)) == [history[i].id for i in expected]


def test_parent_and_time_filters(api, history):
    parent = history[0].id
    assert ids(api.get("/api/v1/executions", query_string={"parent": parent})) == [history[1].id]
    since = (NOW - timedelta(minutes=35)).isoformat()
    until = (NOW - timedelta(minutes=15)).isoformat()
    assert ids(api.get("/api/v1/executions", query_string={"since": since, "until": until})) == [history[3].id, history[2].id]


def test_enforcement_filter(api, history, db_session):
    from app.models import Enforcement

    enforcement = Enforcement(rule_ref="alpha.on_push")
    db_session.add(enforcement)
    db_session.flush()
    history[3].enforcement_id = enforcement.id
    db_session.commit()

    assert ids(api.get("/api/v1/executions", query_string={"enforcement": enforcement.id})) == [history[3].id]
    assert ids(api.get("/api/v1/executions", query_string={"enforcement": enforcement.id + 1})) == []


def test_bad_filters_are_422(api, history):
    for query in ({"status": "exploded"}, {"sort": "status"}, {"since": "yesterday"}, {"parent": "x"}):
        response = api.get("/api/v1/executions", query_string=query)
        assert response.status_code == 422, query
        assert set(response.get_json()) == {"code", "status", "message", "errors"}


def test_get_by_id_and_404(api, history):
    body = api.get(f"/api/v1/executions/{history[1].id}").get_json()
    assert body["action"] == "alpha.step"
    assert body["parent_id"] == history[0].id
    assert body["status"] == "succeeded"
    assert "result" in body
    assert api.get("/api/v1/executions/987654").status_code == 404


def test_stats_group_by_status_and_action_within_the_window(api, history):
    body = api.get("/api/v1/executions/stats").get_json()

    assert body["total"] == 5
    assert body["by_status"] == {"running": 1, "succeeded": 2, "failed": 1, "timeout": 1}
    assert body["by_action"][0] == {"action": "alpha.step", "total": 3, "by_status": {"failed": 1, "succeeded": 2}}
    assert {a["action"] for a in body["by_action"]} == {"alpha.step", "alpha.flow", "beta.job"}
    wide = api.get("/api/v1/executions/stats", query_string={
        "since": (NOW - timedelta(days=2)).isoformat(), "pack": "beta"}).get_json()
    assert wide["by_status"] == {"timeout": 1, "succeeded": 1}


def scoped_client(app, db_session, create_identity, token_for, permission: str, pack: str) -> ApiClient:
    role = Role(name=f"{pack}-{permission}", description="")
    db_session.add(role)
    db_session.flush()
    db_session.add(PermissionGrant(role_id=role.id, permission=permission, pack=pack))
    from app.services.rbac import assign_role

    identity = create_identity()
    assign_role(identity, role)
    db_session.commit()
    return ApiClient(app.test_client(), token_for(identity))


def test_pack_scoped_viewer_sees_only_that_pack(app, db_session, history, create_identity, token_for):
    client = scoped_client(app, db_session, create_identity, token_for, "executions:view", "beta")

    assert ids(client.get("/api/v1/executions")) == [history[4].id, history[5].id]
    assert client.get(f"/api/v1/executions/{history[4].id}").status_code == 200
    assert client.get(f"/api/v1/executions/{history[1].id}").status_code == 403
    assert client.get(f"/api/v1/executions/{history[1].id}/logs").status_code == 403
    assert client.get("/api/v1/executions/stats").get_json()["by_status"] == {"timeout": 1}
    assert client.post(f"/api/v1/executions/{history[0].id}/cancel").status_code == 403


def test_viewer_cannot_cancel_and_anonymous_is_401(app, history, client_as, anonymous):
    viewer = client_as("viewer")
    assert viewer.get(f"/api/v1/executions/{history[0].id}").status_code == 200
    assert viewer.post(f"/api/v1/executions/{history[0].id}/cancel").status_code == 403
    assert anonymous.get("/api/v1/executions").status_code == 401


def test_cancel_of_finished_is_409_and_unknown_is_404(api, history):
    response = api.post(f"/api/v1/executions/{history[1].id}/cancel")
    assert response.status_code == 409
    assert "ended" in response.get_json()["message"]
    assert api.post("/api/v1/executions/987654/cancel").status_code == 404


def test_hostile_ids_and_filters_are_4xx(api, history):
    assert api.get("/api/v1/executions/99999999999999999999999").status_code == 404
    assert api.post("/api/v1/executions/99999999999999999999999/cancel").status_code == 404
    for query in ({"parent": "99999999999999999999999"}, {"enforcement": "-1"}):
        response = api.get("/api/v1/executions", query_string=query)
        assert response.status_code == 422
        assert list(response.get_json()["errors"]) == list(query)
