"""Re-registration edge cases: renamed files, moved or doubled pack directories, inline
trigger types, config.schema.yaml coming and going, content other packs still use."""

from __future__ import annotations

from tests.packs.conftest import register


def registered(api, packs_dir):
    packs_dir.add("core")
    acme = packs_dir.add("acme")
    response = register(api, "core", "acme")
    assert response.status_code == 200, response.json
    return acme


def test_renamed_files_keep_their_rows(api, packs_dir):
    acme = registered(api, packs_dir)
    rule_id = api.get("/api/v1/rules/acme.page_on_alert").json["id"]
    action_id = api.get("/api/v1/actions/acme.hello").json["id"]
    (acme / "rules" / "page_on_alert.yaml").rename(acme / "rules" / "paging.yaml")
    (acme / "actions" / "hello.yaml").rename(acme / "actions" / "greet.yml")

    response = register(api, "acme")
    assert response.status_code == 200, response.json
    (result,) = response.json["packs"]
    assert result["rules"] == {"created": 0, "updated": 1, "unchanged": 1, "removed": 0}
    assert result["actions"] == {"created": 0, "updated": 1, "unchanged": 1, "removed": 0}
    rule = api.get("/api/v1/rules/acme.page_on_alert").json
    assert (rule["id"], rule["source_file"]) == (rule_id, "rules/paging.yaml")
    action = api.get("/api/v1/actions/acme.hello").json
    assert (action["id"], action["source_file"]) == (action_id, "actions/greet.yml")


def test_an_inline_trigger_type_moved_to_triggers_keeps_its_row(api, packs_dir):
    acme = registered(api, packs_dir)
    trigger_id = api.get("/api/v1/triggers/acme.change").json["id"]
    watcher = acme / "sensors" / "watcher.yaml"
    text = watcher.read_text()
    inline = text[text.index("  - name: change"):text.index("  - alert")]
    watcher.write_text(text.replace(inline, "  - change\n"))
    packs_dir.write("acme/triggers/change.yaml", "name: change\npayload_schema: {type: object}\n")

    response = register(api, "acme")
    assert response.status_code == 200, response.json
    assert response.json["packs"][0]["triggers"] == {"created": 0, "updated": 1, "unchanged": 1, "removed": 0}
    trigger = api.get("/api/v1/triggers/acme.change").json
    assert (trigger["id"], trigger["source_file"]) == (trigger_id, "triggers/change.yaml")
    assert trigger["payload_schema"] == {"type": "object"}
    assert sorted(api.get("/api/v1/sensors/acme.WatcherSensor").json["trigger_types"]) == ["acme.alert", "acme.change"]


def test_an_inline_trigger_type_also_in_triggers_names_both_files(api, packs_dir, db_session):
    packs_dir.add("core")
    packs_dir.add("acme")
    packs_dir.write("acme/triggers/change.yaml", "name: change\n")
    response = register(api, "core", "acme")
    assert response.status_code == 422
    assert response.json["errors"] == {"triggers/change.yaml": {"name": ["'change' is also defined in sensors/watcher.yaml."]}} \
        or response.json["errors"] == {"sensors/watcher.yaml": {"name": ["'change' is also defined in triggers/change.yaml."]}}
    assert api.get("/api/v1/packs/acme").status_code == 404


def test_a_removed_config_schema_is_cleared(api, packs_dir):
    acme = registered(api, packs_dir)
    assert api.get("/api/v1/packs/acme").json["config_schema"]
    (acme / "config.schema.yaml").unlink()
    assert register(api, "acme").status_code == 200
    assert api.get("/api/v1/packs/acme").json["config_schema"] == {}


def test_a_broken_config_schema_names_the_file_and_key(api, packs_dir):
    acme = registered(api, packs_dir)
    (acme / "config.schema.yaml").write_text("api_url:\n  type: strin\n")
    response = register(api, "acme")
    assert response.status_code == 422
    assert list(response.json["errors"]) == ["config.schema.yaml"]
    assert "api_url" in response.json["errors"]["config.schema.yaml"]
    assert api.get("/api/v1/packs/acme").json["config_schema"]["api_url"]["type"] == "string"


def test_a_pack_named_differently_from_its_directory(api, packs_dir):
    packs_dir.add("core")
    packs_dir.add("acme", as_name="acme-pack")
    response = register(api, "core", "acme-pack")
    assert response.status_code == 200, response.json
    assert (response.json["packs"][1]["pack"], response.json["packs"][1]["path"]) == ("acme", "acme-pack")
    assert api.get("/api/v1/packs/acme").json["path"] == "acme-pack"
    assert api.get("/api/v1/packs/acme-pack").status_code == 404


def test_a_second_directory_declaring_a_registered_pack_is_a_conflict(api, packs_dir):
    acme = registered(api, packs_dir)
    packs_dir.add("acme", as_name="acme-copy")
    (packs_dir.root / "acme-copy" / "rules" / "every_minute.yaml").unlink()

    response = register(api, "acme-copy")
    assert response.status_code == 409, response.json
    assert response.json["errors"] == {"packs": ["Pack 'acme' is already registered from 'acme'."]}
    # Nothing was taken over: the pack still comes from acme/ with all its rules.
    assert api.get("/api/v1/packs/acme").json["path"] == "acme"
    assert api.get("/api/v1/rules/acme.every_minute").status_code == 200
    assert acme.is_dir()


def test_a_pack_whose_directory_moved_is_registered_from_its_new_place(api, packs_dir):
    acme = registered(api, packs_dir)
    ids = {a["ref"]: a["id"] for a in api.get("/api/v1/actions?pack=acme").json}
    acme.rename(packs_dir.root / "acme-moved")

    response = register(api, "acme-moved")
    assert response.status_code == 200, response.json
    assert api.get("/api/v1/packs/acme").json["path"] == "acme-moved"
    assert {a["ref"]: a["id"] for a in api.get("/api/v1/actions?pack=acme").json} == ids


def test_removing_a_trigger_type_another_pack_s_sensor_emits_is_a_conflict(api, packs_dir):
    acme = registered(api, packs_dir)
    assert api.post("/api/v1/packs", json={"name": "other"}).status_code == 201
    sensor = api.post("/api/v1/sensors", json={"pack": "other", "name": "relay", "class_name": "Relay",
                                               "entry_point": "relay.py", "trigger_types": ["acme.alert"]})
    assert sensor.status_code == 201, sensor.json
    (acme / "triggers" / "alert.yaml").unlink()
    (acme / "rules" / "page_on_alert.yaml").unlink()
    watcher = acme / "sensors" / "watcher.yaml"
    watcher.write_text(watcher.read_text().replace("  - alert\n", ""))

    response = register(api, "acme")
    assert response.status_code == 409, response.json
    assert response.json["errors"] == {"acme.alert": ["Removed from the pack but still emitted by sensor 'other.relay'."]}
    # All or nothing: the rule that left the disk is still there too.
    assert api.get("/api/v1/triggers/acme.alert").status_code == 200
    assert api.get("/api/v1/rules/acme.page_on_alert").status_code == 200

    assert api.delete("/api/v1/sensors/other.relay").status_code == 204
    assert register(api, "acme").status_code == 200
    assert api.get("/api/v1/triggers/acme.alert").status_code == 404
