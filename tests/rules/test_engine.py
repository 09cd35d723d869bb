"""Event → rule → enforcement → execution, with the real worker."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.rules.conftest import make_rule, post_event, wait_processed
from tests.worker import wait_for, wait_until_done


def test_an_event_fires_a_matching_rule_whose_execution_echoes_the_payload(deploy_setup):
    api = deploy_setup
    make_rule(api, "on_prod", criteria={"trigger.env": {"type": "equals", "pattern": "prod"}})

    event_id = post_event(api, {"env": "prod", "version": "1.2.3"})

    event = wait_processed(api, event_id)
    assert event["status"] == "processed"
    [enforcement] = event["enforcements"]
    assert enforcement["rule"] == "demo.on_prod" and enforcement["status"] == "succeeded"
    detail = api.get(f"/api/v1/enforcements/{enforcement['id']}").json
    done = wait_until_done(api, detail["execution"]["id"])
    assert done["status"] == "succeeded"
    assert done["result"]["stdout"].strip() == "deployed=1.2.3"
    # Run on behalf of the rule's author; from the execution back to enforcement, rule and event.
    assert done["user"] == "exec-admin"
    assert done["rule"] == "demo.on_prod" and done["enforcement_id"] == enforcement["id"]
    assert done["context"]["event"]["id"] == event_id


def test_an_event_no_rule_matches_leaves_no_enforcement(deploy_setup):
    api = deploy_setup
    make_rule(api, "on_prod", criteria={"trigger.env": {"type": "equals", "pattern": "prod"}})
    make_rule(api, "disabled", enabled=False)

    event = wait_processed(api, post_event(api, {"env": "dev", "version": "1"}))

    assert event["status"] == "processed" and event["enforcements"] == []
    assert api.get(f"/api/v1/enforcements?event={event['id']}").json == []


def test_a_duplicate_delivery_enforces_nothing_twice(deploy_setup, committed_db, in_app):
    from app.models import Enforcement, Event, Execution, Rule
    from app.services import enforcements, queue

    api = deploy_setup
    make_rule(api, "always")
    event_id = post_event(api, {"env": "prod", "version": "2"})
    with in_app():
        queue.send(queue.PROCESS_EVENT, [event_id], summary="duplicate")
    wait_processed(api, event_id)

    # Even past the status check (a redelivery after the sweeper freed a slow claim), the
    # database refuses a second enforcement of the same rule for the same event.
    with in_app():
        event = committed_db.get(Event, event_id)
        rule = committed_db.scalar(select(Rule).where(Rule.ref == "demo.always"))
        assert enforcements.enforce(rule, event) is None
        committed_db.commit()
    assert committed_db.scalar(select(func.count()).select_from(Enforcement)) == 1
    assert committed_db.scalar(select(func.count()).select_from(Execution)) == 1


def test_a_rule_whose_parameters_do_not_render_records_why_and_runs_nothing(deploy_setup, committed_db):
    from app.models import Execution

    api = deploy_setup
    make_rule(api, "escape", action_parameters={"cmd": "echo {{ ''.__class__.__mro__[1].__subclasses__() }}"})
    make_rule(api, "missing", action_parameters={"cmd": "echo {{ trigger.nope.deeper }}"})

    event = wait_processed(api, post_event(api, {"env": "prod", "version": "3"}))

    failed = {item["rule"]: item for item in event["enforcements"]}
    assert {item["status"] for item in failed.values()} == {"failed"}
    assert "unsafe" in failed["demo.escape"]["failure_reason"] or "access" in failed["demo.escape"]["failure_reason"]
    assert "nope" in failed["demo.missing"]["failure_reason"]
    assert committed_db.scalar(select(func.count()).select_from(Execution)) == 0


@pytest.fixture
def broker(deploy_setup, monkeypatch):
    """A rule ``demo.always`` on ``demo.deploy``; ``broker.down()`` makes every send fail
    (as an unreachable broker does) until ``broker.up()``."""
    from app.services import queue

    make_rule(deploy_setup, "always")
    real_send = queue.send

    def unreachable(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    class Broker:
        def down(self) -> None:
            monkeypatch.setattr(queue, "send", unreachable)

        def up(self) -> None:
            monkeypatch.setattr(queue, "send", real_send)

    return Broker()


def test_an_event_posted_while_the_broker_is_down_is_processed_and_its_execution_runs_once_it_is_back(
        deploy_setup, broker, committed_db, in_app):
    from app.models import Enforcement, Execution
    from tasks.maintenance import sweep_executions

    api = deploy_setup
    broker.down()
    answer = api.post("/api/v1/events", json={"trigger": "demo.deploy", "payload": {"env": "prod", "version": "4"}})
    # The rules ran in the request: the event, its enforcement and its execution are committed.
    assert answer.status_code == 202 and answer.json["status"] == "processed", answer.json
    [enforcement] = api.get(f"/api/v1/events/{answer.json['id']}").json["enforcements"]
    execution_id = api.get(f"/api/v1/enforcements/{enforcement['id']}").json["execution"]["id"]
    assert api.get(f"/api/v1/executions/{execution_id}").json["status"] == "requested"

    broker.up()
    committed_db.execute(Execution.__table__.update().where(Execution.id == execution_id)
                         .values(scheduled_at=func.now() - func.make_interval(0, 0, 0, 0, 1)))
    committed_db.commit()
    with in_app():
        swept = sweep_executions.run()
    assert execution_id in swept["requeued"], swept

    assert wait_until_done(api, execution_id)["status"] == "succeeded"
    assert committed_db.scalar(select(func.count()).select_from(Enforcement)) == 1
    assert committed_db.scalar(select(func.count()).select_from(Execution)) == 1


def test_an_event_recorded_in_a_worker_while_the_broker_is_down_is_swept_once_it_is_back(
        deploy_setup, broker, committed_db, in_app):
    from app.models import Event
    from app.services import unit_of_work
    from app.services.events import record_event
    from tasks.maintenance import sweep_events

    api = deploy_setup
    broker.down()
    with in_app():
        # As a timer tick or a sensor's dispatch records it: process_event is sent after the commit.
        event = record_event("demo.deploy", {"env": "prod", "version": "4"}, source="api")
        unit_of_work.commit()
    assert api.get(f"/api/v1/events/{event.id}").json["status"] == "pending"

    broker.up()
    committed_db.execute(Event.__table__.update().where(Event.id == event.id)
                         .values(created_at=func.now() - func.make_interval(0, 0, 0, 0, 1)))
    committed_db.commit()
    with in_app():
        swept = sweep_events.run()
    assert event.id in swept["requeued"]

    processed = wait_processed(api, event.id)
    assert processed["status"] == "processed" and len(processed["enforcements"]) == 1


def test_an_event_stuck_in_processing_is_freed_and_processed(deploy_setup, committed_db, in_app):
    from app.models import Event
    from app.services.events import record_event
    from tasks.maintenance import sweep_events

    api = deploy_setup
    make_rule(api, "always")
    with in_app():
        event = record_event("demo.deploy", {"env": "prod", "version": "5"}, source="api")
        # As a worker that claimed it and died left it.
        hour_ago = func.now() - func.make_interval(0, 0, 0, 0, 1)
        committed_db.execute(Event.__table__.update().where(Event.id == event.id)
                             .values(status="processing", claimed_at=hour_ago, created_at=hour_ago))
        committed_db.commit()
        swept = sweep_events.run()
    assert event.id in swept["released"] and event.id in swept["requeued"]
    assert wait_processed(api, event.id)["status"] == "processed"


def test_a_failed_execution_fires_a_notify_rule_through_execution_finished(worker_api, make_action, core_pack):
    make_action("ops.fails", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    make_action("ops.notify", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    rule = worker_api.post("/api/v1/rules", json={
        # StackStorm's name for the trigger.
        "pack": "ops", "name": "notify_failures", "trigger": "core.st2.generic.actiontrigger",
        "criteria": {"trigger.status": {"type": "equals", "pattern": "failed"}},
        "action": "ops.notify",
        "action_parameters": {"cmd": "echo failed {{ trigger.action }} {{ trigger.execution_id }}"}})
    assert rule.status_code == 201, rule.json
    assert rule.json["trigger"] == "core.execution_finished"

    failing = worker_api.post("/api/v1/actions/ops.fails/execute", json={"parameters": {"cmd": "exit 2"}}).json
    assert wait_until_done(worker_api, failing["id"])["status"] == "failed"

    def notified():
        found = worker_api.get("/api/v1/executions?rule=ops.notify_failures").json
        return found if found else None

    [notify] = wait_for(notified)
    done = wait_until_done(worker_api, notify["id"])
    assert done["result"]["stdout"].strip() == f"failed ops.fails {failing['id']}"
    # The notify execution's own (succeeded) end is an event too, which matches nothing.
    events = worker_api.get("/api/v1/events?trigger=core.st2.generic.actiontrigger").json
    assert len(events) >= 1


def test_an_execution_canceled_while_queued_fires_execution_finished(app, worker_api, make_action, core_pack,
                                                                     committed_db):
    from app.services import executions

    make_action("ops.waits", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    rule = worker_api.post("/api/v1/rules", json={
        "pack": "core", "name": "on_cancel", "trigger": "core.execution_finished", "action": "core.noop",
        "criteria": {"trigger.status": {"type": "equals", "pattern": "canceled"}}})
    assert rule.status_code == 201, rule.json
    with app.test_request_context():  # created but never sent: no worker ever claims it
        queued = executions.create_execution(executions.action_for_execute("ops.waits"), {"cmd": "true"})
        committed_db.commit()
        queued_id = queued.id

    assert worker_api.post(f"/api/v1/executions/{queued_id}/cancel").json["status"] == "canceled"

    [event] = wait_for(lambda: worker_api.get(f"/api/v1/events?source=execution:{queued_id}").json or None)
    assert event["payload"]["status"] == "canceled" and event["payload"]["action"] == "ops.waits"
    [fired] = wait_for(lambda: worker_api.get("/api/v1/executions?rule=core.on_cancel").json or None)
    assert wait_until_done(worker_api, fired["id"])["status"] == "succeeded"


def test_purge_removes_old_events_and_enforcements_and_the_execution_says_so(deploy_setup, committed_db, in_app):
    from app.models import Enforcement, Event
    from tasks.maintenance import purge_events

    api = deploy_setup
    make_rule(api, "always")
    event_id = post_event(api, {"env": "prod", "version": "6"})
    [enforcement] = wait_processed(api, event_id)["enforcements"]
    execution_id = api.get(f"/api/v1/enforcements/{enforcement['id']}").json["execution"]["id"]
    wait_until_done(api, execution_id)
    old = func.now() - func.make_interval(0, 0, 0, 30)
    with in_app():
        committed_db.execute(Event.__table__.update().values(created_at=old))
        committed_db.execute(Enforcement.__table__.update().values(created_at=old))
        committed_db.commit()
        assert purge_events.run()["deleted"] == 2

    assert api.get(f"/api/v1/events/{event_id}").status_code == 404
    execution = api.get(f"/api/v1/executions/{execution_id}").json
    assert execution["enforcement_id"] is None and execution["context"]["event_purged"] is True
    assert execution["rule"] == "demo.always"
