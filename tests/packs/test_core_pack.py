"""The built-in core pack, registered from the repository's packs/ directory."""

from __future__ import annotations

import subprocess

from app.config import ROOT
from tests.packs.conftest import register

CORE_ACTIONS = {"core.ask", "core.echo", "core.http", "core.local", "core.local_script", "core.noop"}
CORE_TRIGGERS = {"core.cron_timer", "core.date_timer", "core.execution_finished", "core.inquiry_created",
                 "core.interval_timer", "core.webhook"}


def test_core_registers_and_its_actions_and_triggers_are_listed(api):
    response = register(api, "core")
    assert response.status_code == 200, response.json
    (result,) = response.json["packs"]
    assert result["pack"] == "core" and result["path"] == "core" and result["version"] == "1.0.0"
    assert result["actions"]["created"] == len(CORE_ACTIONS)
    assert result["triggers"]["created"] == len(CORE_TRIGGERS)

    actions = api.get("/api/v1/actions?pack=core&page_size=100")
    assert {a["ref"] for a in actions.json} == CORE_ACTIONS
    triggers = api.get("/api/v1/triggers?pack=core&page_size=100")
    assert {t["ref"] for t in triggers.json} == CORE_TRIGGERS

    pack = api.get("/api/v1/packs/core").json
    assert pack["version"] == "1.0.0"


def test_core_action_definitions(api):
    assert register(api, "core").status_code == 200
    local = api.get("/api/v1/actions/core.local").json
    assert local["runner_type"] == "local-shell-cmd"
    assert local["parameters"]["cmd"]["required"] is True
    assert local["parameters"]["timeout"]["default"] == 60
    assert local["source_file"] == "actions/local.yaml"

    echo = api.get("/api/v1/actions/core.echo").json
    assert echo["parameters"]["cmd"] == {"type": "string", "default": "echo {{ message }}", "immutable": True,
                                         "description": "Fixed command; the message is rendered into it."}
    assert echo["parameters"]["message"]["required"] is True

    http = api.get("/api/v1/actions/core.http").json
    assert http["runner_type"] == "http-request"
    assert http["parameters"]["password"]["secret"] is True
    assert http["parameters"]["method"]["default"] == "GET"

    script = api.get("/api/v1/actions/core.local_script").json
    assert (script["runner_type"], script["entry_point"]) == ("local-shell-script", "scripts/local_script.sh")

    ask = api.get("/api/v1/actions/core.ask").json
    assert ask["runner_type"] == "inquirer"
    assert set(ask["parameters"]) == {"schema", "route", "users", "roles", "ttl"}


def test_core_trigger_schemas(api):
    assert register(api, "core").status_code == 200
    interval = api.get("/api/v1/triggers/core.interval_timer").json
    assert interval["parameters_schema"]["required"] == ["unit", "delta"]
    assert interval["parameters_schema"]["properties"]["unit"]["enum"] == ["weeks", "days", "hours", "minutes", "seconds"]
    assert set(interval["payload_schema"]["properties"]) == {"executed_at", "schedule"}
    cron = api.get("/api/v1/triggers/core.cron_timer").json
    assert set(cron["parameters_schema"]["properties"]) == {
        "timezone", "expression", "year", "month", "day", "week", "day_of_week", "hour", "minute", "second"}
    date = api.get("/api/v1/triggers/core.date_timer").json
    assert date["parameters_schema"]["required"] == ["date"]
    webhook = api.get("/api/v1/triggers/core.webhook").json
    assert webhook["parameters_schema"]["required"] == ["url"]
    assert set(webhook["payload_schema"]["properties"]) == {"headers", "body"}


def test_registering_core_again_keeps_ids_and_adds_nothing(api):
    assert register(api, "core").status_code == 200
    first = {a["ref"]: a["id"] for a in api.get("/api/v1/actions?pack=core&page_size=100").json}
    again = register(api, "core")
    assert again.status_code == 200
    (result,) = again.json["packs"]
    assert result["pack_created"] is False
    assert result["actions"] == {"created": 0, "updated": 0, "unchanged": len(CORE_ACTIONS), "removed": 0}
    assert result["triggers"] == {"created": 0, "updated": 0, "unchanged": len(CORE_TRIGGERS), "removed": 0}
    second = {a["ref"]: a["id"] for a in api.get("/api/v1/actions?pack=core&page_size=100").json}
    assert second == first


def test_register_all_without_a_list_registers_every_pack(api):
    response = api.post("/api/v1/packs/register", json={})
    assert response.status_code == 200, response.json
    assert "core" in [p["pack"] for p in response.json["packs"]]


def test_the_shipped_local_script_runs_its_argument():
    script = ROOT / "packs" / "core" / "actions" / "scripts" / "local_script.sh"
    done = subprocess.run([str(script), "echo hello from the script"], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, "hello from the script\n")
    refused = subprocess.run([str(script)], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "usage" in refused.stderr
