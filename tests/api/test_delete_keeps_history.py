"""Deleting content that history points at: the history stays, by ref, without the link."""

from __future__ import annotations

from app.models import Enforcement, Event, Execution


def test_deleting_a_rule_an_action_and_a_trigger_keeps_their_history(api, db_session, create_rule):
    rule = create_rule("acme.on_page", trigger="acme.page", action="acme.run")
    event = Event(trigger_id=rule.trigger_id, trigger_ref="acme.page", payload={"n": 1})
    db_session.add(event)
    db_session.flush()
    enforcement = Enforcement(event_id=event.id, rule_id=rule.id, rule_ref=rule.ref)
    db_session.add(enforcement)
    db_session.flush()
    run = Execution(action_id=rule.action_id, action_ref="acme.run", pack_name="acme", runner_type="noop",
                    enforcement_id=enforcement.id, rule_ref=rule.ref)
    db_session.add(run)
    db_session.commit()
    ids = (event.id, enforcement.id, run.id)

    for url in ("/api/v1/rules/acme.on_page", "/api/v1/actions/acme.run", "/api/v1/triggers/acme.page"):
        response = api.delete(url)
        assert response.status_code == 204, (url, response.get_json())
        assert api.get(url).status_code == 404

    db_session.expire_all()
    event, enforcement, run = (db_session.get(model, id_) for model, id_ in zip((Event, Enforcement, Execution), ids, strict=True))
    assert (event.trigger_id, event.trigger_ref) == (None, "acme.page")
    assert (enforcement.rule_id, enforcement.rule_ref, enforcement.event_id) == (None, "acme.on_page", event.id)
    assert (run.action_id, run.action_ref, run.enforcement_id) == (None, "acme.run", enforcement.id)
    assert api.get(f"/api/v1/executions/{run.id}").json["action"] == "acme.run"


def test_deleting_a_sensor_leaves_its_trigger_types(api, create_trigger):
    create_trigger("acme.page")
    made = api.post("/api/v1/sensors", json={"pack": "acme", "name": "watch", "class_name": "Watch",
                                             "entry_point": "watch.py", "trigger_types": ["acme.page"]})
    assert made.status_code == 201, made.json
    assert api.delete("/api/v1/triggers/acme.page").status_code == 409
    assert api.delete("/api/v1/sensors/acme.watch").status_code == 204
    assert api.get("/api/v1/triggers/acme.page").status_code == 200
    assert api.delete("/api/v1/triggers/acme.page").status_code == 204
