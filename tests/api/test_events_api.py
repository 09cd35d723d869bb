"""Events and enforcements through the API: posting, filters, pack scoping, the rule tester."""

from __future__ import annotations

import json

import pytest

from tests.factories import ApiClient, pagination

PAYLOAD_SCHEMA = {"type": "object", "properties": {"env": {"type": "string"}, "n": {"type": "integer"}}}


@pytest.fixture
def scoped_client(app, db_session, create_identity, token_for):
    """scoped_client([("events:view", "acme")]) -> a client holding exactly those grants."""
    from app.services.rbac import create_role

    def make(grants) -> ApiClient:
        role = create_role(f"role-{len(grants)}-{id(grants)}", "", [{"permission": p, "pack": k} for p, k in grants])
        db_session.commit()
        return ApiClient(app.test_client(), token_for(create_identity(roles=[role.name])))

    return make


@pytest.fixture
def triggers(create_trigger):
    create_trigger("acme.alert", payload_schema=PAYLOAD_SCHEMA)
    create_trigger("other.alert", payload_schema=PAYLOAD_SCHEMA)


def test_posting_an_event_answers_202_with_its_id(api, triggers):
    answer = api.post("/api/v1/events", json={"trigger": "acme.alert", "payload": {"env": "prod"}})

    assert answer.status_code == 202, answer.json
    event = api.get(f"/api/v1/events/{answer.json['id']}").json
    assert event["trigger"] == "acme.alert" and event["payload"] == {"env": "prod"}
    assert event["source"] == "api" and event["pack"] == "acme"
    assert event["status"] in ("pending", "processing", "processed")


def test_a_payload_not_matching_the_schema_is_a_422_naming_the_field(api, triggers):
    answer = api.post("/api/v1/events", json={"trigger": "acme.alert", "payload": {"n": "many"}})

    assert answer.status_code == 422
    assert "payload" in answer.json["errors"] and "many" in json.dumps(answer.json["errors"])


def test_an_unknown_trigger_is_a_404(api):
    assert api.post("/api/v1/events", json={"trigger": "nope.nothing", "payload": {}}).status_code == 404


def test_events_are_filtered_by_trigger_source_status_and_time(api, triggers, db_session):
    from app.services.events import record_event

    for trigger, source in (("acme.alert", "api"), ("acme.alert", "webhook:deploy"), ("other.alert", "api")):
        record_event(trigger, {}, source=source)
    db_session.commit()

    def refs(query: str) -> list[tuple[str, str]]:
        answer = api.get(f"/api/v1/events?{query}")
        assert answer.status_code == 200, answer.json
        return sorted((e["trigger"], e["source"]) for e in answer.json)

    assert refs("trigger=acme.alert") == [("acme.alert", "api"), ("acme.alert", "webhook:deploy")]
    assert refs("source=webhook:deploy") == [("acme.alert", "webhook:deploy")]
    assert len(refs("status=pending")) == 3 and refs("status=processed") == []
    assert refs("until=2000-01-01T00:00:00Z") == [] and len(refs("since=2000-01-01T00:00:00Z")) == 3
    page = api.get("/api/v1/events?page_size=2")
    assert len(page.json) == 2 and pagination(page)["total"] == 3
    assert api.get("/api/v1/events?status=lost").status_code == 422
    assert api.get("/api/v1/events?sort=payload").status_code == 422


def test_events_and_enforcements_are_scoped_to_packs(api, triggers, scoped_client, create_rule, db_session):
    from app.models import Enforcement
    from app.services.events import record_event

    create_rule("acme.watch", trigger="acme.alert")
    create_rule("other.watch", trigger="other.alert")
    mine = record_event("acme.alert", {}, source="api")
    theirs = record_event("other.alert", {}, source="api")
    db_session.add_all([Enforcement(event_id=mine.id, rule_ref="acme.watch", pack_name="acme", status="succeeded"),
                        Enforcement(event_id=theirs.id, rule_ref="other.watch", pack_name="other", status="failed")])
    db_session.commit()
    acme = scoped_client([("events:view", "acme"), ("events:create", "acme")])

    assert [e["trigger"] for e in acme.get("/api/v1/events").json] == ["acme.alert"]
    assert acme.get(f"/api/v1/events/{theirs.id}").status_code == 403
    assert [e["rule"] for e in acme.get("/api/v1/enforcements").json] == ["acme.watch"]
    assert acme.post("/api/v1/events", json={"trigger": "other.alert", "payload": {}}).status_code == 403
    assert acme.post("/api/v1/events", json={"trigger": "acme.alert", "payload": {}}).status_code == 202
    # An admin sees both, filtered by rule, event and status.
    assert [e["rule"] for e in api.get("/api/v1/enforcements?status=failed").json] == ["other.watch"]
    assert [e["rule"] for e in api.get(f"/api/v1/enforcements?event={mine.id}").json] == ["acme.watch"]
    assert [e["rule"] for e in api.get("/api/v1/enforcements?rule=other.watch").json] == ["other.watch"]
    shown = api.get(f"/api/v1/events/{mine.id}").json
    assert [e["rule"] for e in shown["enforcements"]] == ["acme.watch"]


@pytest.mark.parametrize("name", ["core.webhook", "core.st2.webhook", "core.st2.IntervalTimer",
                                  "core.cron_timer", "core.st2.generic.actiontrigger",
                                  "core.inquiry_created", "core.st2.generic.inquiry"])
def test_platform_triggers_cannot_be_posted_under_any_name(api, create_trigger, db_session, name):
    """A posted core.webhook event would reach webhook rules without the webhook's signature."""
    from app.models import Event

    for ref in ("core.webhook", "core.cron_timer", "core.interval_timer", "core.execution_finished",
                "core.inquiry_created"):
        create_trigger(ref)
    answer = api.post("/api/v1/events", json={"trigger": name, "payload": {"body": 1}})

    assert answer.status_code == 422
    assert "come only from Patchbay itself" in answer.json["message"]
    assert answer.json["errors"] == {"trigger": ["Not postable."]}
    assert db_session.query(Event).count() == 0


@pytest.fixture
def tester_rule(api, triggers, create_action):
    create_action("acme.page", "local-shell-cmd", parameters={
        "cmd": {"type": "string"}, "token": {"type": "string", "secret": True}})
    created = api.post("/api/v1/rules", json={
        "pack": "acme", "name": "page_on_prod", "trigger": "acme.alert", "action": "acme.page",
        "criteria": {"trigger.env": {"type": "equals", "pattern": "prod"},
                     "trigger.n": {"type": "gt", "pattern": 3}},
        "action_parameters": {"cmd": "echo {{ trigger.env }}", "token": "s3cret-value"}})
    assert created.status_code == 201, created.json
    assert created.json["created_by"] == "admin"
    return created.json


def test_the_rule_tester_explains_a_payload_that_does_not_match(api, tester_rule, rows):
    from app.models import Enforcement, Event, Execution

    answer = api.post("/api/v1/rules/acme.page_on_prod/test", json={"payload": {"env": "dev", "n": 5}})

    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["matched"] is False
    by_path = {check["path"]: check for check in body["criteria"]}
    assert by_path["trigger.env"] == {"path": "trigger.env", "operator": "equals", "pattern": "prod",
                                      "found": True, "value": "dev", "matched": False}
    assert by_path["trigger.n"]["matched"] is True
    assert body["parameters"] == {"cmd": "echo dev", "token": "********"}
    assert "s3cret" not in answer.get_data(as_text=True)
    assert rows(Event) == rows(Enforcement) == rows(Execution) == 0


def test_the_rule_tester_takes_a_recorded_event(api, tester_rule, db_session):
    from app.services.events import record_event

    event = record_event("acme.alert", {"env": "prod", "n": 9}, source="api")
    db_session.commit()

    body = api.post("/api/v1/rules/acme.page_on_prod/test", json={"event": event.id}).json

    assert body["matched"] is True and body["event"] == event.id and body["trigger_parameters_match"] is True
    assert api.post("/api/v1/rules/acme.page_on_prod/test", json={}).status_code == 422
    assert api.post("/api/v1/rules/acme.page_on_prod/test", json={"event": 10**12}).status_code == 404


def test_the_rule_tester_shows_a_template_that_fails(api, triggers, create_action):
    create_action("acme.page", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    api.post("/api/v1/rules", json={
        "pack": "acme", "name": "escape", "trigger": "acme.alert", "action": "acme.page",
        "action_parameters": {"cmd": "echo {{ ''.__class__.__mro__ }}"}})

    body = api.post("/api/v1/rules/acme.escape/test", json={"payload": {}}).json

    assert body["matched"] is True and body["parameters"] is None and body["parameters_error"]


def test_a_regex_search_rule_is_refused_with_a_pointer_to_regex(api, triggers, create_action):
    create_action("acme.page")
    answer = api.post("/api/v1/rules", json={
        "pack": "acme", "name": "old_search", "trigger": "acme.alert", "action": "acme.page",
        "criteria": {"trigger.env": {"type": "search", "pattern": "pro"}}})

    assert answer.status_code == 422
    assert "regex" in json.dumps(answer.json["errors"])
