"""A broken pack file is a 422 naming the file and the field, and nothing of the pack is written."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.models import Action, Pack, Rule, Sensor, Trigger
from tests.packs.conftest import register

PACK_YAML = 'name: acme\nversion: "1.0.0"\n'


def nothing_written(db_session) -> bool:
    return all(db_session.scalar(select(func.count()).select_from(m).where(m.pack_name == "acme")) == 0
               for m in (Action, Trigger, Sensor, Rule)) \
        and db_session.scalar(select(func.count()).select_from(Pack).where(Pack.name == "acme")) == 0


@pytest.fixture
def acme(packs_dir):
    """A minimal valid pack (one action, one trigger) to break one file of."""
    packs_dir.write("acme/pack.yaml", PACK_YAML)
    packs_dir.write("acme/actions/ok.yaml", "name: ok\nrunner_type: noop\n")
    packs_dir.write("acme/triggers/ping.yaml", "name: ping\n")
    return packs_dir


def error_for(api, db_session) -> dict:
    response = register(api, "acme")
    assert response.status_code == 422, response.json
    assert set(response.json) == {"code", "status", "message", "errors"}
    assert "nothing was registered" in response.json["message"]
    assert nothing_written(db_session)
    return response.json["errors"]


def test_a_valid_minimal_pack_registers(api, acme):
    response = register(api, "acme")
    assert response.status_code == 200, response.json


def test_invalid_yaml_names_the_file_and_line(api, acme, db_session):
    acme.write("acme/actions/bad.yaml", "name: bad\nrunner_type: noop\nparameters: {x: [1, 2}\n")
    errors = error_for(api, db_session)
    assert list(errors) == ["actions/bad.yaml"]
    assert errors["actions/bad.yaml"]["_file"][0].startswith("Not valid YAML at line 3")


def test_a_missing_field_names_file_and_field(api, acme, db_session):
    acme.write("acme/actions/bad.yaml", "name: bad\ndescription: no runner\n")
    errors = error_for(api, db_session)
    assert errors == {"actions/bad.yaml": {"runner_type": ["Missing required field."]}}


@pytest.mark.parametrize(("file", "text", "field", "message"), [
    ("actions/bad.yaml", "name: bad\nrunner_type: noop\nenabled: 'yes'\n", "enabled", "Must be true or false."),
    ("actions/bad.yaml", "name: bad\nrunner_type: noop\ntimeout: soon\n", "timeout", "Must be an integer."),
    ("actions/bad.yaml", "name: bad\nrunner_type: noop\nparamters: {}\n", "paramters", "Unknown field."),
    ("actions/bad.yaml", "name: bad\nrunner_type: local-shell-script\n", "entry_point",
     "The local-shell-script runner needs an entry_point."),
    ("actions/bad.yaml", "name: bad\nrunner_type: local-shell-script\nentry_point: ../../../etc/passwd\n",
     "entry_point", "Must be a path inside the pack (relative, without '..')."),
    ("actions/bad.yaml", "name: bad\nrunner_type: local-shell-script\nentry_point: missing.sh\n",
     "entry_point", "There is no file missing.sh or actions/missing.sh in the pack."),
    ("actions/bad.yaml", "name: bad\nrunner_type: noop\nretry: {retries: 99}\n", "retry",
     "'retries' must be an integer from 0 to 10."),
    ("actions/bad.yaml", "name: 'bad name'\nrunner_type: noop\n", "name",
     "Use letters, digits, '_', '-' and '.' (max 128), starting with a letter, digit or '_'."),
    ("actions/bad.yaml", "- just\n- a list\n", "_file", "Must be a YAML mapping (key: value pairs)."),
    ("actions/bad.yaml", "name: bad\nrunner_type: noop\ndescription: 2024-01-01\n", "_file",
     "The value at description is a date; quote it to make it a string."),
    ("actions/bad.yaml", 'name: bad\nrunner_type: noop\ndescription: "a\\0b"\n', "_file",
     "The value at description contains a NUL character."),
    ("triggers/bad.yaml", "name: bad\npayload_schema: {type: nonsense}\n", "payload_schema", None),
    ("sensors/bad.yaml", "class_name: Bad\nentry_point: bad.py\n", "entry_point",
     "There is no file bad.py or sensors/bad.py in the pack."),
    ("sensors/bad.yaml", "entry_point: bad.py\n", "class_name", "Missing required field."),
    ("sensors/bad.yaml", "class_name: Bad\nentry_point: bad.py\ntrigger_types: [{description: x}]\n",
     "trigger_types[0].name", "Missing required field."),
    ("rules/bad.yaml", "name: bad\ntrigger: {type: acme.ping}\naction: {ref: acme.ok}\n"
     "criteria: {trigger.x: {type: resembles, pattern: 1}}\n", "criteria.trigger.x", None),
    ("rules/bad.yaml", "name: bad\ntrigger: {type: acme.ping}\naction: {ref: acme.nope}\n", "action.ref",
     "Action 'acme.nope' does not exist."),
    ("rules/bad.yaml", "name: bad\ntrigger: {type: acme.nope}\naction: {ref: acme.ok}\n", "trigger.type",
     "Trigger 'acme.nope' does not exist."),
    ("rules/bad.yaml", "name: bad\ntrigger: {type: acme.ping}\naction: {ref: acme.ok, parameters: {x: 1}}\n",
     "action.parameters.x", "Unknown parameter."),
    ("rules/bad.yaml", "name: bad\npack: other\ntrigger: {type: acme.ping}\naction: {ref: acme.ok}\n", "pack",
     "The rule is in pack 'acme'; remove 'pack' or set it to that."),
    ("rules/bad.yaml", "name: bad\naction: {ref: acme.ok}\n", "trigger", "Missing required field."),
    ("config.schema.yaml", "token: {type: strin}\n", "token", None),
])
def test_a_bad_field_names_file_and_field(api, acme, db_session, file, text, field, message):
    acme.write(f"acme/{file}", text)
    errors = error_for(api, db_session)
    assert list(errors) == [file], errors
    assert field in errors[file], errors
    if message is not None:
        assert errors[file][field] == [message]


SHELL_ACTION = ("name: sh\nrunner_type: local-shell-cmd\ntimeout: 30\nparameters:\n"
                "  cmd: {default: uptime, immutable: true}\n  env: {type: object}\n")
RULE = "name: bad\ntrigger: {type: acme.ping}\naction:\n  ref: acme.sh\n  parameters: "


@pytest.mark.parametrize(("parameters", "field", "message"), [
    ("{cwd: /}", "action.parameters.cwd",
     "'cwd' is a parameter of the local-shell-cmd runner that action acme.sh does not expose."),
    ("{timeout: 31}", "action.parameters.timeout",
     "'timeout' may be at most 30 seconds for action acme.sh (its own timeout)."),
    ("{env: {BASH_ENV: /tmp/x}}", "action.parameters.env",
     "'BASH_ENV' changes how a shell or an interpreter starts; only the action's metadata may set it."),
    ("{env: {LD_PRELOAD: '{{ trigger.lib }}'}}", "action.parameters.env",
     "'LD_PRELOAD' changes how a shell or an interpreter starts; only the action's metadata may set it."),
])
def test_a_rule_setting_what_a_caller_may_not_names_file_and_field(api, acme, db_session, parameters, field,
                                                                     message):
    acme.write("acme/actions/sh.yaml", SHELL_ACTION)
    acme.write("acme/rules/bad.yaml", RULE + parameters + "\n")
    errors = error_for(api, db_session)
    assert errors == {"rules/bad.yaml": {field: [message]}}


def test_pack_metadata_may_set_startup_names_and_rules_their_declared_parameters(api, acme, db_session):
    acme.write("acme/actions/sh.yaml", SHELL_ACTION.replace("env: {type: object}",
                                                            "env: {type: object, default: {BASH_ENV: /opt/rc}}"))
    acme.write("acme/rules/good.yaml", RULE.replace("bad", "good") + "{env: {STAGE: prod}, timeout: 30}\n")
    response = register(api, "acme")
    assert response.status_code == 200, response.json
    assert db_session.scalar(select(Rule).where(Rule.ref == "acme.good")).action_parameters == {
        "env": {"STAGE": "prod"}, "timeout": 30}


def test_an_invalid_parameter_schema_names_the_parameter(api, acme, db_session):
    acme.write("acme/actions/bad.yaml",
               "name: bad\nrunner_type: noop\nparameters:\n  count: {type: integer, default: many}\n"
               "  flag: {type: boolean, required: maybe}\n")
    errors = error_for(api, db_session)
    assert set(errors["actions/bad.yaml"]) == {"parameters.count", "parameters.flag"}


def test_every_bad_file_is_reported_at_once(api, acme, db_session):
    acme.write("acme/actions/one.yaml", "name: one\n")
    acme.write("acme/rules/two.yml", "name: two\ntrigger: {}\naction: {ref: nodot}\n")
    errors = error_for(api, db_session)
    assert errors == {
        "actions/one.yaml": {"runner_type": ["Missing required field."]},
        "rules/two.yml": {"trigger.type": ["Missing required field."], "action.ref": ["Must be a ref: '<pack>.<name>'."]},
    }


def test_two_files_defining_the_same_name(api, acme, db_session):
    acme.write("acme/actions/ok_again.yaml", "name: ok\nrunner_type: noop\n")
    errors = error_for(api, db_session)
    assert errors == {"actions/ok_again.yaml": {"name": ["'ok' is also defined in actions/ok.yaml."]}}


def test_pack_yaml_problems(api, acme, db_session):
    acme.write("acme/pack.yaml", "name: acme\nversion: 1.10\nkeywords: [a, 1]\n")
    errors = error_for(api, db_session)
    assert errors == {"pack.yaml": {"version": ['Must be a string; quote it (version: "1.0.0").'],
                                    "keywords": ["Must be a list of strings."]}}


def test_a_yaml_alias_bomb_is_refused(api, acme, db_session):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    acme.write("acme/triggers/bomb.yaml", "name: bomb\n" + "\n".join(lines) + "\ntags: *a8\n")
    errors = error_for(api, db_session)
    assert errors["triggers/bomb.yaml"]["_file"][0].startswith("The document is too large")


def test_a_script_link_leading_outside_the_pack(api, acme, db_session, tmp_path):
    outside = tmp_path / "outside.sh"
    outside.write_text("#!/bin/sh\n")
    (acme.root / "acme" / "actions" / "escape.sh").symlink_to(outside)
    acme.write("acme/actions/bad.yaml", "name: bad\nrunner_type: local-shell-script\nentry_point: escape.sh\n")
    errors = error_for(api, db_session)
    assert errors == {"actions/bad.yaml": {"entry_point": ["Leads outside the pack."]}}


def test_a_metadata_file_link_leading_outside_the_pack(api, acme, db_session, tmp_path):
    outside = tmp_path / "secret.yaml"
    outside.write_text("name: stolen\nrunner_type: noop\n")
    (acme.root / "acme" / "actions" / "stolen.yaml").symlink_to(outside)
    errors = error_for(api, db_session)
    assert errors == {"actions/stolen.yaml": {"_file": ["Is a link leading outside the pack (or a link loop)."]}}


def test_an_unquoted_on_key_is_explained(api, acme, db_session):
    acme.write("acme/actions/bad.yaml", "name: bad\nrunner_type: noop\nretry:\n  on: [failed]\n")
    errors = error_for(api, db_session)
    assert errors == {"actions/bad.yaml": {"_file": ['Key True at retry must be a string; quote it ("on": ...).']}}


def test_a_recursive_yaml_document_is_refused(api, acme, db_session):
    acme.write("acme/triggers/loop.yaml", "name: loop\ntags: &loop [*loop]\n")
    errors = error_for(api, db_session)
    assert errors["triggers/loop.yaml"]["_file"][0].startswith("The document is too large or too deeply nested")


def test_a_file_over_the_size_limit_is_refused(api, acme, db_session):
    acme.write("acme/actions/huge.yaml", "name: huge\nrunner_type: noop\ndescription: " + "x" * (1024 * 1024) + "\n")
    errors = error_for(api, db_session)
    assert errors == {"actions/huge.yaml": {"_file": ["Is larger than 1048576 bytes."]}}


def test_an_entry_point_from_the_pack_root_is_accepted(api, acme):
    acme.write("acme/scripts/run.sh", "#!/bin/sh\necho run\n")
    acme.write("acme/actions/run.yaml", "name: run\nrunner_type: local-shell-script\nentry_point: scripts/run.sh\n")
    response = register(api, "acme")
    assert response.status_code == 200, response.json
    assert api.get("/api/v1/actions/acme.run").json["entry_point"] == "scripts/run.sh"


def test_a_metadata_symlink_loop_is_reported(api, acme, db_session):
    loop = acme.root / "acme" / "rules" / "loop.yaml"
    loop.parent.mkdir()
    loop.symlink_to(loop)
    errors = error_for(api, db_session)
    assert errors == {"rules/loop.yaml": {"_file": ["Is a link leading outside the pack (or a link loop)."]}}


@pytest.mark.parametrize(("trigger", "parameters", "message"), [
    ("core.cron_timer", {"expression": "61 * * * *"}, "expression '61 * * * *': the schedule"),
    ("core.cron_timer", {"hour": "25"}, "The cron fields: the schedule '0 25 "),
    ("core.cron_timer", {"day_of_week": "mon-funday"}, "'mon-funday' is not a valid cron field."),
    ("core.cron_timer", {"minute": 5, "timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus' is not an IANA"),
    ("core.date_timer", {"date": "next tuesday"}, "date 'next tuesday' is not an ISO 8601"),
    ("core.st2.IntervalTimer", {"unit": "fortnights", "delta": 1}, "is not one of"),
    ("core.interval_timer", {"unit": "seconds", "delta": 0}, "less than the minimum of 1"),
])
def test_a_timer_rule_that_cannot_be_scheduled_is_refused_by_api_and_pack_files(api, acme, db_session, trigger,
                                                                                parameters, message):
    acme.add("core")
    assert register(api, "core").status_code == 200
    response = api.post("/api/v1/rules", json={"pack": "core", "name": "tick", "trigger": trigger,
                                               "trigger_parameters": parameters, "action": "core.noop"})
    assert response.status_code == 422, response.json
    [problem] = response.json["errors"]["trigger_parameters"]
    assert message in problem

    acme.write("acme/rules/tick.yaml", f"name: tick\ntrigger: {{type: {trigger}, parameters: {json.dumps(parameters)}}}\n"
                                       "action: {ref: acme.ok}\n")
    [problem] = error_for(api, db_session)["rules/tick.yaml"]["trigger.parameters"]
    assert message in problem
