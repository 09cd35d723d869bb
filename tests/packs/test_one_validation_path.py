"""One validation path: the same invalid action, trigger type, sensor or rule is refused with
the same message naming the same field, whether it is posted to the API or registered from
a pack file (issue 9, item 4)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.packs.conftest import register

PACK_YAML = 'name: acme\nversion: "1.0.0"\n'
SENSOR_PY = "class Bad:\n    def poll(self):\n        return []\n"
URLS = {"actions": "/api/v1/actions", "triggers": "/api/v1/triggers", "sensors": "/api/v1/sensors",
        "rules": "/api/v1/rules"}
VALID = {
    "actions": {"name": "bad", "runner_type": "noop"},
    "triggers": {"name": "bad"},
    "sensors": {"name": "bad", "class_name": "Bad", "entry_point": "sensors/bad.py"},
    "rules": {"name": "bad", "trigger": "acme.ping", "action": "acme.ok"},
}
# A rule file nests these fields as StackStorm does (trigger: {type, parameters}, ...).
RULE_FILE_FIELDS = {"trigger": "trigger.type", "trigger_parameters": "trigger.parameters",
                    "action": "action.ref", "action_parameters": "action.parameters"}

CASES = [
    # (kind, fields changed from VALID, the field named)
    ("actions", {"name": "bad name"}, "name"),
    ("actions", {"runner_type": "telepathy"}, "runner_type"),
    ("actions", {"timeout": 7 * 24 * 3600 + 1}, "timeout"),
    ("actions", {"timeout": 0}, "timeout"),
    ("actions", {"timeout": "soon"}, "timeout"),
    ("actions", {"enabled": "yes"}, "enabled"),
    ("actions", {"parameters": {"count": {"type": "integer", "default": "many"}}}, "parameters.count"),
    ("actions", {"parameters": {"x": {"type": "text"}}}, "parameters.x"),
    ("actions", {"parameters": {"bad name": {"type": "string"}}}, "parameters.bad name"),
    ("actions", {"parameters": ["x"]}, "parameters"),
    ("actions", {"runner_type": "local-shell-script"}, "entry_point"),
    ("actions", {"runner_type": "local-shell-script", "entry_point": "../../etc/passwd"}, "entry_point"),
    ("actions", {"retry": {"retries": 99}}, "retry"),
    ("actions", {"tags": ["t"] * 51}, "tags"),
    ("actions", {"description": "x" * 10_001}, "description"),
    ("triggers", {"name": "-bad"}, "name"),
    ("triggers", {"payload_schema": {"type": "nonsense"}}, "payload_schema"),
    ("triggers", {"parameters_schema": "any"}, "parameters_schema"),
    ("triggers", {"tags": ["t" * 129]}, "tags"),
    ("sensors", {"name": "bad/name"}, "name"),
    ("sensors", {"class_name": "not-a-class"}, "class_name"),
    ("sensors", {"entry_point": "/abs/bad.py"}, "entry_point"),
    ("sensors", {"poll_interval": 0}, "poll_interval"),
    ("sensors", {"poll_interval": 7 * 24 * 3600 + 1}, "poll_interval"),
    ("sensors", {"trigger_types": ["acme.ping", "acme.ping"]}, "trigger_types"),
    ("sensors", {"trigger_types": ["acme.gone"]}, "trigger_types"),
    ("sensors", {"trigger_types": ["acme.not a ref"]}, "trigger_types"),
    ("rules", {"name": "bad\nname"}, "name"),
    ("rules", {"criteria": {"trigger.x": {"type": "resembles", "pattern": 1}}}, "criteria.trigger.x"),
    ("rules", {"criteria": {"trigger.x": {"type": "regex", "pattern": "("}}}, "criteria.trigger.x"),
    ("rules", {"criteria": {"body.x": {"type": "eq", "pattern": 1}}}, "criteria.body.x"),
    ("rules", {"trigger": "nodot"}, "trigger"),
    ("rules", {"action": "acme.nope"}, "action"),
    ("rules", {"trigger": "acme.nope"}, "trigger"),
    ("rules", {"action_parameters": {"x": 1}}, "action_parameters.x"),
    ("rules", {"trigger_parameters": "every minute"}, "trigger_parameters"),
    ("rules", {"enabled": "sometimes"}, "enabled"),
]


@pytest.fixture
def acme(api, packs_dir):
    """Pack acme, registered, with the action and trigger type the rules and sensors use."""
    packs_dir.write("acme/pack.yaml", PACK_YAML)
    packs_dir.write("acme/actions/ok.yaml", "name: ok\nrunner_type: noop\n")
    packs_dir.write("acme/triggers/ping.yaml", "name: ping\n")
    packs_dir.write("acme/sensors/bad.py", SENSOR_PY)
    assert register(api, "acme").status_code == 200
    return packs_dir


def pack_file(kind: str, fields: dict[str, Any]) -> str:
    """The item as a pack file of StackStorm's layout."""
    if kind == "rules":
        fields = dict(fields)
        trigger = {"type": fields.pop("trigger")}
        action = {"ref": fields.pop("action")}
        if "trigger_parameters" in fields:
            trigger["parameters"] = fields.pop("trigger_parameters")
        if "action_parameters" in fields:
            action["parameters"] = fields.pop("action_parameters")
        fields = {**fields, "trigger": trigger, "action": action}
    return yaml.safe_dump(fields, sort_keys=False)


def in_a_file(kind: str, field: str) -> str:
    """Where a pack file holds the API's ``field`` (``action_parameters.x``: ``action.parameters.x``)."""
    head, dot, rest = field.partition(".")
    return (RULE_FILE_FIELDS.get(head, head) if kind == "rules" else head) + dot + rest


def as_in_a_file(kind: str, errors: dict[str, Any], prefix: str = "") -> dict[str, list[str]]:
    """The API's errors named as a pack file's are: nested parts joined with '.', a rule's
    trigger and action fields where its file holds them."""
    flat: dict[str, list[str]] = {}
    for key, found in errors.items():
        name = RULE_FILE_FIELDS.get(key, key) if kind == "rules" and not prefix else key
        name = prefix if name == "_schema" else f"{prefix}.{name}" if prefix else name
        flat.update(as_in_a_file(kind, found, name) if isinstance(found, dict) else {name: found})
    return flat


@pytest.mark.parametrize(("kind", "change", "field"), CASES,
                         ids=[f"{kind}-{field}-{i}" for i, (kind, _, field) in enumerate(CASES)])
def test_the_api_and_a_pack_file_refuse_alike(api, acme, kind, change, field):
    fields = {**VALID[kind], **change}

    response = api.post(URLS[kind], json={"pack": "acme", **fields})
    assert response.status_code == 422, response.json
    through_api = as_in_a_file(kind, response.json["errors"])

    file = f"{kind}/bad.yaml"
    acme.write(f"acme/{file}", pack_file(kind, fields))
    response = register(api, "acme")
    assert response.status_code == 422, response.json
    assert list(response.json["errors"]) == [file], response.json
    from_pack = response.json["errors"][file]

    assert in_a_file(kind, field) in from_pack, from_pack
    assert through_api == from_pack


@pytest.mark.parametrize("kind", sorted(VALID))
def test_what_a_pack_file_holds_the_api_takes(api, acme, kind):
    # The valid items of the cases above pass both ways.
    response = api.post(URLS[kind], json={"pack": "acme", **VALID[kind]})
    assert response.status_code == 201, response.json
    api.delete(f"{URLS[kind]}/acme.bad")
    acme.write(f"acme/{kind}/bad.yaml", pack_file(kind, VALID[kind]))
    response = register(api, "acme")
    assert response.status_code == 200, response.json
    assert response.json["packs"][0][kind]["created"] == 1


def test_a_patch_is_refused_as_the_pack_file_is(api, acme):
    assert api.post(URLS["actions"], json={"pack": "acme", **VALID["actions"]}).status_code == 201
    response = api.patch(f"{URLS['actions']}/acme.bad", json={"timeout": 7 * 24 * 3600 + 1})
    assert response.status_code == 422
    assert response.json["errors"] == {"timeout": ["Must be from 1 to 604800 seconds."]}
