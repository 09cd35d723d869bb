"""POST /api/v1/packs/register with test packs in a temporary PACKS_PATH."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models import Action, Pack, Rule, Sensor, Trigger
from tests.packs.conftest import register


def content_counts(db_session, pack: str) -> dict[str, int]:
    counts = {}
    for model in (Action, Trigger, Sensor, Rule):
        counts[model.__tablename__] = db_session.scalar(
            select(func.count()).select_from(model).where(model.pack_name == pack))
    counts["packs"] = db_session.scalar(select(func.count()).select_from(Pack).where(Pack.name == pack))
    return counts


def test_registers_every_part_of_a_pack(api, packs_dir, db_session):
    packs_dir.add("core")
    packs_dir.add("acme")
    response = register(api, "core", "acme")
    assert response.status_code == 200, response.json
    acme = response.json["packs"][1]
    assert acme["pack"] == "acme" and acme["path"] == "acme" and acme["pack_created"] is True
    assert acme["actions"]["created"] == 2
    assert acme["triggers"]["created"] == 2  # alert (triggers/) and change (declared by the sensor)
    assert acme["sensors"]["created"] == 1
    assert acme["rules"]["created"] == 2

    pack = db_session.scalar(select(Pack).where(Pack.name == "acme"))
    assert (pack.version, pack.author, pack.email, pack.keywords) == ("0.1.0", "ACME Ops", "ops@acme.example", ["test", "acme"])
    assert pack.path == "acme"
    assert pack.config_schema["api_token"] == {"type": "string", "description": "Token for the ACME API.",
                                               "secret": True, "required": True}

    hello = api.get("/api/v1/actions/acme.hello").json
    assert hello["timeout"] == 30 and hello["retry"] == {"retries": 2, "delay": 1, "on": ["failed", "timeout"]}
    assert hello["tags"] == ["greeting", "owner=ops"]
    assert hello["source_file"] == "actions/hello.yaml"
    change = api.get("/api/v1/triggers/acme.change").json
    assert change["source_file"] == "sensors/watcher.yaml"
    assert change["payload_schema"]["properties"]["item"] == {"type": "string"}
    sensor = api.get("/api/v1/sensors/acme.WatcherSensor").json
    assert sensor["class_name"] == "WatcherSensor" and sensor["entry_point"] == "watcher.py"
    assert sensor["poll_interval"] == 30
    assert sorted(sensor["trigger_types"]) == ["acme.alert", "acme.change"]
    rule = api.get("/api/v1/rules/acme.page_on_alert").json
    assert (rule["trigger"], rule["action"]) == ("acme.alert", "acme.hello")
    assert rule["criteria"] == {"trigger.severity": {"type": "equals", "pattern": "critical"}}
    assert rule["action_parameters"] == {"name": "{{ trigger.host }}"}
    timer_rule = api.get("/api/v1/rules/acme.every_minute").json
    assert timer_rule["trigger"] == "core.interval_timer" and timer_rule["enabled"] is False
    assert timer_rule["trigger_parameters"] == {"unit": "minutes", "delta": 1}


def test_reregistering_updates_in_place(api, packs_dir, db_session):
    packs_dir.add("core")
    acme = packs_dir.add("acme")
    assert register(api, "core", "acme").status_code == 200
    ids = {a["ref"]: a["id"] for a in api.get("/api/v1/actions?pack=acme").json}
    rule_id = api.get("/api/v1/rules/acme.page_on_alert").json["id"]

    hello = acme / "actions" / "hello.yaml"
    hello.write_text(hello.read_text().replace("Say hello.", "Say hello nicely."))
    response = register(api, "acme")
    assert response.status_code == 200, response.json
    (result,) = response.json["packs"]
    assert result["actions"] == {"created": 0, "updated": 1, "unchanged": 1, "removed": 0}
    assert result["rules"] == {"created": 0, "updated": 0, "unchanged": 2, "removed": 0}

    assert {a["ref"]: a["id"] for a in api.get("/api/v1/actions?pack=acme").json} == ids
    assert api.get("/api/v1/actions/acme.hello").json["description"] == "Say hello nicely."
    assert api.get("/api/v1/rules/acme.page_on_alert").json["id"] == rule_id
    assert content_counts(db_session, "acme") == {"actions": 2, "triggers": 2, "sensors": 1, "rules": 2, "packs": 1}


def test_a_removed_file_removes_its_row(api, packs_dir, db_session):
    packs_dir.add("core")
    acme = packs_dir.add("acme")
    assert register(api, "core", "acme").status_code == 200
    (acme / "rules" / "every_minute.yaml").unlink()
    (acme / "sensors" / "watcher.yaml").unlink()
    response = register(api, "acme")
    assert response.status_code == 200, response.json
    (result,) = response.json["packs"]
    assert result["rules"]["removed"] == 1
    assert result["sensors"]["removed"] == 1
    assert result["triggers"]["removed"] == 1  # acme.change was declared by the sensor file
    assert api.get("/api/v1/rules/acme.every_minute").status_code == 404
    assert api.get("/api/v1/sensors/acme.WatcherSensor").status_code == 404
    assert api.get("/api/v1/triggers/acme.change").status_code == 404
    assert content_counts(db_session, "acme") == {"actions": 2, "triggers": 1, "sensors": 0, "rules": 1, "packs": 1}


def test_content_made_through_the_api_survives_reregistering(api, packs_dir):
    packs_dir.add("core")
    packs_dir.add("acme")
    assert register(api, "core", "acme").status_code == 200
    made = api.post("/api/v1/actions", json={"pack": "acme", "name": "manual", "runner_type": "noop"})
    assert made.status_code == 201, made.json
    assert register(api, "acme").status_code == 200
    assert api.get("/api/v1/actions/acme.manual").json["id"] == made.json["id"]


def test_removing_an_action_another_pack_uses_is_a_conflict(api, packs_dir, db_session):
    packs_dir.add("core")
    acme = packs_dir.add("acme")
    assert register(api, "core", "acme").status_code == 200
    created = api.post("/api/v1/packs", json={"name": "other"})
    assert created.status_code == 201, created.json
    rule = api.post("/api/v1/rules", json={"pack": "other", "name": "uses_deploy", "trigger": "acme.alert",
                                           "action": "acme.deploy"})
    assert rule.status_code == 201, rule.json

    (acme / "actions" / "deploy.yaml").unlink()
    response = register(api, "acme")
    assert response.status_code == 409
    assert "acme.deploy" in response.json["message"]
    assert response.json["errors"] == {"acme.deploy": ["Removed from the pack but still used by rule 'other.uses_deploy'."]}
    assert api.get("/api/v1/actions/acme.deploy").status_code == 200


def test_a_pack_may_use_content_of_a_pack_registered_in_the_same_call_in_any_order(api, packs_dir):
    packs_dir.add("core")
    packs_dir.add("acme")
    response = register(api, "acme", "core")
    assert response.status_code == 200, response.json
    assert [p["pack"] for p in response.json["packs"]] == ["acme", "core"]


def test_a_rule_using_an_unregistered_pack_fails_naming_file_and_field(api, packs_dir, db_session):
    packs_dir.add("acme")  # its every_minute rule needs core, which is not registered
    response = register(api, "acme")
    assert response.status_code == 422
    errors = response.json["errors"]
    assert set(errors) == {"rules/every_minute.yaml"}
    assert set(errors["rules/every_minute.yaml"]) == {"trigger.type", "action.ref"}
    assert "core.interval_timer" in errors["rules/every_minute.yaml"]["trigger.type"][0]
    assert content_counts(db_session, "acme") == {"actions": 0, "triggers": 0, "sensors": 0, "rules": 0, "packs": 0}


def test_one_bad_pack_registers_nothing_of_the_request(api, packs_dir, db_session):
    packs_dir.add("core")
    acme = packs_dir.add("acme")
    (acme / "actions" / "hello.yaml").write_text("name: hello\nrunner_type: [unclosed\n")
    response = register(api, "core", "acme")
    assert response.status_code == 422
    assert "actions/hello.yaml" in response.json["errors"]
    assert content_counts(db_session, "core")["actions"] == 0
    assert content_counts(db_session, "acme")["packs"] == 0


def test_a_failed_reregistration_leaves_the_registered_pack_as_it_was(api, packs_dir, db_session):
    packs_dir.add("core")
    acme = packs_dir.add("acme")
    assert register(api, "core", "acme").status_code == 200
    before = content_counts(db_session, "acme")
    (acme / "rules" / "every_minute.yaml").unlink()
    hello = acme / "actions" / "hello.yaml"
    hello.write_text(hello.read_text().replace("runner_type: local-shell-cmd", "runner_type: telepathy"))
    response = register(api, "acme")
    assert response.status_code == 422
    assert response.json["errors"]["actions/hello.yaml"]["runner_type"][0].startswith("Unknown runner type 'telepathy'")
    assert content_counts(db_session, "acme") == before
    assert api.get("/api/v1/rules/acme.every_minute").status_code == 200
