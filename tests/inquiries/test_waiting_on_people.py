"""Inquiries with a real worker: ``core.ask`` opens one and waits; the API's answer, cancel and
the periodic expiry end it (succeeded, canceled, failed — and its workflow with it), and
``core.inquiry_created`` lets a rule tell people there is a question."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.db import utcnow
from app.models import Inquiry
from tests.api.helpers import assert_error
from tests.executions.conftest import wait_for, wait_until_done, wait_until_status
from tests.executions.test_lifecycle import execute
from tests.tree_runner import RUNNER_TYPE


def pending_inquiry(api, execution_id: int) -> dict:
    """The inquiry of a ``core.ask`` execution once it waits ``pending``."""
    wait_until_status(api, execution_id, "pending")
    [inquiry] = api.get(f"/api/v1/inquiries?execution={execution_id}").get_json()
    return inquiry


@pytest.fixture
def tree(make_action, core_pack):
    """A workflow-like parent (the ``test-tree`` runner) whose children run in order."""
    return make_action("flow.parent", RUNNER_TYPE, parameters={"children": {"type": "array", "default": []}})


def test_an_answer_through_the_api_becomes_the_result_of_core_ask(worker_api, core_pack):
    created = execute(worker_api, "core.ask", route="ops", ttl=30)
    inquiry = pending_inquiry(worker_api, created["id"])
    assert (inquiry["route"], inquiry["ttl"], inquiry["status"]) == ("ops", 30, "pending")
    assert inquiry["root_execution"] == created["id"]

    answered = worker_api.post(f"/api/v1/inquiries/{inquiry['id']}/respond", json={"response": {"continue": True}})

    assert answered.status_code == 200, answered.get_json()
    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["response"] == {"continue": True}
    assert done["result"]["inquiry_id"] == inquiry["id"] and done["result"]["route"] == "ops"
    body = worker_api.get(f"/api/v1/inquiries/{inquiry['id']}").get_json()
    assert (body["status"], body["responder"], body["response"]) == ("responded", "exec-admin", {"continue": True})
    audit = worker_api.get(f"/api/v1/audit?resource_type=inquiries&resource={inquiry['id']}").get_json()
    assert any(entry["actor"] == "exec-admin" and entry["details"].get("responder") == "exec-admin"
               for entry in audit), audit
    assert worker_api.get("/api/v1/inquiries").get_json() == []  # nothing left to answer


def test_a_wrong_answer_keeps_it_waiting_and_a_second_answer_is_refused(worker_api, core_pack):
    created = execute(worker_api, "core.ask")
    inquiry = pending_inquiry(worker_api, created["id"])
    url = f"/api/v1/inquiries/{inquiry['id']}/respond"

    wrong = assert_error(worker_api.post(url, json={"response": {"continue": "maybe"}}), 422, "response")
    assert "continue" in wrong["errors"]["response"]
    assert worker_api.get(f"/api/v1/executions/{created['id']}").get_json()["status"] == "pending"
    assert worker_api.post(url, json={"response": {"continue": False}}).status_code == 200
    assert_error(worker_api.post(url, json={"response": {"continue": True}}), 409)

    done = wait_until_done(worker_api, created["id"])
    assert (done["status"], done["result"]["response"]) == ("succeeded", {"continue": False})


def test_a_canceled_inquiry_cancels_its_execution(worker_api, core_pack):
    created = execute(worker_api, "core.ask")
    inquiry = pending_inquiry(worker_api, created["id"])

    canceled = worker_api.post(f"/api/v1/inquiries/{inquiry['id']}/cancel")

    assert canceled.status_code == 200 and canceled.get_json()["status"] == "canceled"
    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "canceled", done
    assert f"Inquiry {inquiry['id']} was canceled." == done["error"]
    assert_error(worker_api.post(f"/api/v1/inquiries/{inquiry['id']}/cancel"), 409)


def test_canceling_the_execution_cancels_its_inquiry(worker_api, core_pack):
    created = execute(worker_api, "core.ask")
    inquiry = pending_inquiry(worker_api, created["id"])

    assert worker_api.post(f"/api/v1/executions/{created['id']}/cancel").get_json()["status"] == "canceled"

    assert worker_api.get(f"/api/v1/inquiries/{inquiry['id']}").get_json()["status"] == "canceled"
    assert_error(worker_api.post(f"/api/v1/inquiries/{inquiry['id']}/respond",
                                 json={"response": {"continue": True}}), 409)


def test_an_expired_inquiry_times_out_and_its_workflow_takes_the_failure_path(app, worker_api, tree, committed_db):
    from tasks.inquiries import expire_inquiries

    alone = execute(worker_api, "core.ask", ttl=1)
    parent = execute(worker_api, tree, children=[{"action": "core.ask", "name": "approve",
                                                  "parameters": {"ttl": 5}}])
    first = pending_inquiry(worker_api, alone["id"])
    step = wait_for(lambda: worker_api.get(f"/api/v1/inquiries?root={parent['id']}").get_json() or None)[0]
    fresh = execute(worker_api, "core.ask", ttl=60)
    fresh_inquiry = pending_inquiry(worker_api, fresh["id"])

    with app.test_request_context():
        assert expire_inquiries.run() == {"skipped": False, "timed_out": 0}  # none is due yet
        # Both due now (as if their ttl had passed); the third has an hour to go.
        committed_db.execute(update(Inquiry).where(Inquiry.id.in_([first["id"], step["id"]]))
                             .values(expires_at=utcnow() - timedelta(seconds=1)))
        committed_db.commit()
        assert expire_inquiries.run() == {"skipped": False, "timed_out": 2}

    done = wait_until_done(worker_api, alone["id"])
    assert done["status"] == "failed" and done["error"] == f"Inquiry {first['id']} timed out unanswered."
    workflow = wait_until_done(worker_api, parent["id"], timeout=60)
    assert workflow["status"] == "failed" and workflow["result"]["children"] == {"approve": "failed"}
    assert worker_api.get(f"/api/v1/inquiries/{first['id']}").get_json()["status"] == "timed_out"
    assert_error(worker_api.post(f"/api/v1/inquiries/{step['id']}/respond",
                                 json={"response": {"continue": True}}), 409)
    assert worker_api.get(f"/api/v1/inquiries/{fresh_inquiry['id']}").get_json()["status"] == "pending"
    assert worker_api.get(f"/api/v1/executions/{fresh['id']}").get_json()["status"] == "pending"


def test_the_expiry_is_in_the_beat_schedule(app):
    import tasks.inquiries  # noqa: F401 - the worker imports every task module; so does this
    from tasks.periodic import beat_schedule

    entry = beat_schedule(app.config)["expire-inquiries"]
    assert entry["task"] == "patchbay.expire_inquiries" and 0 < entry["schedule"] <= 60


def test_an_opened_inquiry_fires_inquiry_created_and_a_rule_on_it_runs(worker_api, core_pack, committed_db):
    rule = worker_api.post("/api/v1/rules", json={
        # StackStorm's name for the trigger.
        "pack": "core", "name": "tell_approvers", "trigger": "core.st2.generic.inquiry", "action": "core.echo",
        "criteria": {"trigger.route": {"type": "equals", "pattern": "ops"}},
        "action_parameters": {"message": "inquiry {{ trigger.id }} for {{ trigger.users | join(',') }}"}})
    assert rule.status_code == 201, rule.get_json()
    assert rule.get_json()["trigger"] == "core.inquiry_created"

    created = execute(worker_api, "core.ask", route="ops", users=["exec-admin"])
    inquiry = pending_inquiry(worker_api, created["id"])

    [event] = wait_for(lambda: worker_api.get(f"/api/v1/events?source=inquiry:{inquiry['id']}").get_json() or None)
    assert event["trigger"] == "core.inquiry_created"
    assert event["payload"]["id"] == inquiry["id"] and event["payload"]["route"] == "ops"
    assert event["payload"]["execution_id"] == created["id"] and event["payload"]["users"] == ["exec-admin"]
    assert event["payload"]["schema"] == inquiry["schema"] and event["payload"]["roles"] == []
    [told] = wait_for(lambda: worker_api.get("/api/v1/executions?rule=core.tell_approvers").get_json() or None)
    done = wait_until_done(worker_api, told["id"])
    assert done["status"] == "succeeded"
    assert done["result"]["stdout"].strip() == f"inquiry {inquiry['id']} for exec-admin"
    # The platform's own trigger cannot be posted by a caller.
    posted = worker_api.post("/api/v1/events", json={"trigger": "core.inquiry_created", "payload": {"id": 1}})
    assert_error(posted, 422, "trigger")
    assert committed_db.scalar(select(Inquiry.status).where(Inquiry.id == inquiry["id"])) == "pending"
