"""An event posted over HTTP (the events API, a webhook) has its rules evaluated in the
request's own transaction: the answer comes with the enforcements and executions committed
and queued — one Celery hop per event — and a failure of the rules leaves the event
``failed`` with nothing half done and nothing sent.

The broker here is a Redis database no worker reads, so what was sent stays countable.
"""

from __future__ import annotations

from sqlalchemy import func, select

from app.services import queue
from tests.rules.conftest import make_rule


def queued(client, name: str) -> list[str]:
    """The task names waiting in queue ``name``."""
    import json

    return [json.loads(message)["headers"]["task"] for message in client.lrange(name, 0, -1)]


def test_the_answer_comes_with_the_event_processed_and_its_execution_queued(deploy_setup, quiet_broker):
    api = deploy_setup
    make_rule(api, "on_prod", criteria={"trigger.env": {"type": "equals", "pattern": "prod"}})

    answer = api.post("/api/v1/events", json={"trigger": "demo.deploy", "payload": {"env": "prod", "version": "7"}})

    assert answer.status_code == 202 and answer.json["status"] == "processed", answer.json
    event = api.get(f"/api/v1/events/{answer.json['id']}").json  # no waiting: it is all committed
    [enforcement] = event["enforcements"]
    assert enforcement["status"] == "succeeded" and enforcement["rule"] == "demo.on_prod"
    execution = api.get(f"/api/v1/enforcements/{enforcement['id']}").json["execution"]
    assert api.get(f"/api/v1/executions/{execution['id']}").json["status"] == "requested"
    # The execution's message is queued; no process_event message exists for this event.
    assert queued(quiet_broker, queue.ACTIONS_QUEUE) == [queue.RUN_EXECUTION]
    assert queued(quiet_broker, queue.EVENTS_QUEUE) == []

    unmatched = api.post("/api/v1/events", json={"trigger": "demo.deploy", "payload": {"env": "dev"}})
    assert unmatched.json["status"] == "processed"
    assert api.get(f"/api/v1/events/{unmatched.json['id']}").json["enforcements"] == []
    assert queued(quiet_broker, queue.ACTIONS_QUEUE) == [queue.RUN_EXECUTION]


def test_a_failure_of_the_rules_leaves_the_event_failed_with_nothing_half_done(deploy_setup, quiet_broker,
                                                                             committed_db, monkeypatch):
    from app.models import Enforcement, Event, Execution
    from app.services import enforcements

    api = deploy_setup
    make_rule(api, "first")
    make_rule(api, "second")
    real_enforce, calls = enforcements.enforce, []

    def second_breaks(rule, event):
        calls.append(rule.ref)
        if len(calls) == 2:
            raise RuntimeError("the rules engine broke on the second rule")
        return real_enforce(rule, event)

    monkeypatch.setattr(enforcements, "enforce", second_breaks)
    answer = api.post("/api/v1/events", json={"trigger": "demo.deploy", "payload": {"env": "prod", "version": "8"}})

    # The event is recorded and says why; the first rule's enforcement and execution, written
    # before the failure, are rolled back with their message.
    assert answer.status_code == 202 and answer.json["status"] == "failed", answer.json
    assert calls == ["demo.first", "demo.second"]
    event = committed_db.get(Event, answer.json["id"])
    assert event.status == "failed" and "broke on the second rule" in event.error
    assert committed_db.scalar(select(func.count()).select_from(Enforcement)) == 0
    assert committed_db.scalar(select(func.count()).select_from(Execution)) == 0
    assert queued(quiet_broker, queue.ACTIONS_QUEUE) == []
    assert queued(quiet_broker, queue.EVENTS_QUEUE) == []


def test_a_webhook_answers_after_its_rules_ran(deploy_setup, core_pack, quiet_broker, committed_db):
    from app.models import Enforcement, Event, Execution

    api = deploy_setup
    make_rule(api, "hooked", trigger="core.webhook", trigger_parameters={"url": "demo/deploy"},
              criteria={"trigger.body.env": {"type": "equals", "pattern": "prod"}},
              action_parameters={"cmd": "echo deployed={{ trigger.body.version }}"})

    answer = api.post("/api/v1/webhooks/demo/deploy", json={"env": "prod", "version": "9"})

    assert answer.status_code == 202, answer.json
    event = committed_db.get(Event, answer.json["event_id"])
    assert event.status == "processed" and event.source == "webhook:demo/deploy"
    enforcement = committed_db.scalar(select(Enforcement).where(Enforcement.event_id == event.id))
    assert enforcement.rule_ref == "demo.hooked" and enforcement.status == "succeeded"
    execution = committed_db.scalar(select(Execution).where(Execution.enforcement_id == enforcement.id))
    assert execution.status == "requested" and execution.parameters == {"cmd": "echo deployed={{ trigger.body.version }}"}
    assert queued(quiet_broker, queue.ACTIONS_QUEUE) == [queue.RUN_EXECUTION]


def test_vault_down_when_a_rule_s_execution_stores_a_secret_fails_the_enforcement_and_keeps_no_row(
        deploy_setup, make_action, quiet_broker, committed_db, monkeypatch):
    # create_execution writes its row, then the secret to Vault: the Vault failure must take
    # the row back with it, while the enforcement stays, failed with the reason.
    from app.models import Enforcement, Execution
    from app.services import vault

    api = deploy_setup
    make_action("demo.login", "local-shell-cmd", parameters={
        "cmd": {"type": "string"}, "password": {"type": "string", "secret": True}})
    make_rule(api, "with_secret", action="demo.login",
              action_parameters={"cmd": "true", "password": "{{ trigger.version }}"})

    def vault_down(path, values):
        raise vault.VaultUnavailable()

    monkeypatch.setattr(vault, "write_secret", vault_down)
    answer = api.post("/api/v1/events", json={"trigger": "demo.deploy", "payload": {"env": "prod", "version": "x"}})

    assert answer.status_code == 202 and answer.json["status"] == "processed", answer.json
    enforcement = committed_db.scalar(select(Enforcement))
    assert enforcement.status == "failed" and "Vault" in enforcement.failure_reason
    assert committed_db.scalar(select(func.count()).select_from(Execution)) == 0
    assert queued(quiet_broker, queue.ACTIONS_QUEUE) == []
