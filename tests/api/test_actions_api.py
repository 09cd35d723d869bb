"""The actions API: what can run, its runner, parameters, timeout and retry policy."""

from __future__ import annotations

import pytest

from app.models import Action
from tests.api.helpers import assert_error, assert_hostile_rejected, assert_too_large, refs, total
from tests.factories import pagination

URL = "/api/v1/actions"


def body(**fields):
    return {"pack": "acme", "name": "hello", "runner_type": "local-shell-cmd", **fields}


def test_create_and_get_action(api, create_pack):
    create_pack("acme")
    response = api.post(URL, json=body(parameters={"cmd": {"type": "string", "default": "echo hi"}}))
    assert response.status_code == 201, response.json
    assert response.json["ref"] == "acme.hello"
    got = api.get(f"{URL}/acme.hello")
    assert got.status_code == 200
    assert got.json["parameters"]["cmd"]["default"] == "echo hi"
    listed = api.get(f"{URL}?pack=acme")
    assert [a["ref"] for a in listed.json] == ["acme.hello"]
    assert pagination(listed)["total"] == 1


def test_update_and_delete_action(api, create_action, rows):
    create_action("acme.hello", description="old", timeout=30)
    patched = api.patch(f"{URL}/acme.hello", json={"description": "new", "enabled": False,
                                                    "retry": {"retries": 2, "delay": 5, "on": ["timeout"]}})
    assert patched.status_code == 200, patched.json
    assert patched.json["description"] == "new" and patched.json["enabled"] is False
    assert patched.json["timeout"] == 30 and patched.json["runner_type"] == "noop"
    assert patched.json["retry"] == {"retries": 2, "delay": 5, "on": ["timeout"]}
    assert api.delete(f"{URL}/acme.hello").status_code == 204
    assert_error(api.get(f"{URL}/acme.hello"), 404)
    assert_error(api.delete(f"{URL}/acme.hello"), 404)
    assert rows(Action) == 0


@pytest.mark.parametrize("fields, field", [
    ({"runner_type": "teleport"}, "runner_type"),
    ({"runner_type": None}, "runner_type"),
    ({"runner_type": "python-script"}, "entry_point"),
    ({"runner_type": "local-shell-script", "entry_point": "../outside.sh"}, "entry_point"),
    ({"runner_type": "local-shell-script", "entry_point": "/bin/sh"}, "entry_point"),
    ({"parameters": {"bad name": {"type": "string"}}}, "parameters"),
    ({"parameters": {"x": {"type": "text"}}}, "parameters"),
    ({"parameters": {"x": "string"}}, "parameters"),
    ({"parameters": {"x": {"type": "integer", "default": "seven"}}}, "parameters"),
    ({"parameters": {"x": {"type": "string", "immutable": True}}}, "parameters"),
    ({"parameters": {"x": {"type": "string", "required": "yes"}}}, "parameters"),
    ({"parameters": {"x": {"type": "string", "minLength": -1}}}, "parameters"),
    ({"parameters": {"a": {"position": 0}, "b": {"position": 0}}}, "parameters"),
    ({"parameters": []}, "parameters"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": 10**12}, "timeout"),
    ({"timeout": "soon"}, "timeout"),
    ({"retry": {"retries": 99}}, "retry"),
    ({"retry": {"on": ["sunday"]}}, "retry"),
    ({"retry": {"whenever": True}}, "retry"),
    ({"name": "bad/name"}, "name"),
    ({"name": ""}, "name"),
    ({"name": "hello\n"}, "name"),
    ({"pack": "acme\n"}, "pack"),
    ({"parameters": {"x\n": {"type": "string"}}}, "parameters"),
    ({"pack": "missing"}, "pack"),
    ({"tags": ["x"] * 51}, "tags"),
    ({"ref": "acme.other"}, "ref"),
])
def test_invalid_action_is_422_naming_the_field(api, create_pack, rows, fields, field):
    create_pack("acme")
    assert_error(api.post(URL, json=body(**fields)), 422, field)
    assert rows(Action) == 0


def test_missing_required_fields(api):
    errors = assert_error(api.post(URL, json={}), 422)["errors"]
    assert {"pack", "name", "runner_type"} <= set(errors)


def test_duplicate_ref_is_409(api, create_action, rows):
    create_action("acme.hello")
    body_ = assert_error(api.post(URL, json=body()), 409, "ref")
    assert "acme.hello" in body_["message"]
    assert rows(Action) == 1


def test_update_errors_leave_the_row_unchanged(api, create_action):
    create_action("acme.hello", runner_type="local-shell-cmd", timeout=30)
    assert_error(api.patch(f"{URL}/acme.nope", json={"timeout": 5}), 404)
    assert_error(api.patch(f"{URL}/acme.hello", json={"runner_type": "python-script"}), 422, "entry_point")
    assert_error(api.patch(f"{URL}/acme.hello", json={"timeout": -1}), 422, "timeout")
    assert_error(api.patch(f"{URL}/acme.hello", json={"name": "x"}), 422, "name")
    got = api.get(f"{URL}/acme.hello").json
    assert got["runner_type"] == "local-shell-cmd" and got["timeout"] == 30


def test_delete_refused_while_rules_use_it(api, create_action, create_rule, rows):
    create_action("acme.run")
    create_rule("acme.r1", action="acme.run")
    create_rule("ops.r2", action="acme.run")
    body_ = assert_error(api.delete(f"{URL}/acme.run"), 409)
    assert body_["errors"] == {"rules": ["acme.r1", "ops.r2"]}
    assert rows(Action) == 1
    assert api.get(f"{URL}/acme.run").status_code == 200


def test_rules_of_an_action(api, create_action, create_rule):
    create_action("acme.run")
    create_rule("ops.b", action="acme.run")
    create_rule("acme.a", action="acme.run")
    create_rule("acme.unrelated")
    listed = api.get(f"{URL}/acme.run/rules")
    assert listed.status_code == 200
    assert refs(listed) == ["acme.a", "ops.b"] and total(listed) == 2
    assert listed.json[0]["action"] == "acme.run"
    assert_error(api.get(f"{URL}/acme.nope/rules"), 404)


def test_rules_of_an_action_show_only_visible_rules(scoped_client, create_action, create_rule):
    create_action("acme.run")
    create_rule("ops.mine", action="acme.run")
    create_rule("acme.theirs", action="acme.run")
    listed = scoped_client({"rules:view": "ops", "actions:view": "acme"}).get(f"{URL}/acme.run/rules")
    assert listed.status_code == 200 and refs(listed) == ["ops.mine"] and total(listed) == 1
    # Without view on the action's pack, the answer does not even say whether it exists.
    assert scoped_client({"rules:view": "ops"}).get(f"{URL}/acme.run/rules").status_code == 403


def test_list_filters_search_sort_and_pages(api, create_action):
    create_action("acme.b_one", runner_type="local-shell-cmd")
    create_action("acme.bxone", enabled=False)
    create_action("ops.alpha", runner_type="http-request")
    assert refs(api.get(URL)) == ["acme.b_one", "acme.bxone", "ops.alpha"]
    assert refs(api.get(f"{URL}?runner_type=http-request")) == ["ops.alpha"]
    assert refs(api.get(f"{URL}?enabled=false")) == ["acme.bxone"]
    assert refs(api.get(f"{URL}?pack=acme&enabled=true")) == ["acme.b_one"]
    assert refs(api.get(f"{URL}?q=B_")) == ["acme.b_one"]
    assert refs(api.get(f"{URL}?q=%25")) == []
    assert refs(api.get(f"{URL}?sort=-name")) == ["acme.bxone", "acme.b_one", "ops.alpha"]
    assert refs(api.get(f"{URL}?sort=-pack&page_size=1")) == ["ops.alpha"]
    assert total(api.get(f"{URL}?page_size=2")) == 3
    assert api.get(f"{URL}?page=3&page_size=2").json == []
    assert_error(api.get(f"{URL}?page=0"), 422, "page")
    assert_error(api.get(f"{URL}?page=-3"), 422, "page")
    assert_error(api.get(f"{URL}?page_size=101"), 422, "page_size")
    assert_error(api.get(f"{URL}?page_size=0"), 422, "page_size")
    assert_error(api.get(f"{URL}?sort=entry_point"), 422, "sort")
    assert_error(api.get(f"{URL}?runner_type=a%00"), 422, "runner_type")


def test_hostile_bodies_never_5xx(api, create_pack, create_action, rows):
    create_pack("acme")
    assert_hostile_rejected(api, "POST", URL, body(), lambda: rows(Action))
    create_action("acme.hello")
    assert_hostile_rejected(api, "PATCH", f"{URL}/acme.hello", {}, lambda: rows(Action))
    assert_error(api.post(URL, json=body(parameters={"a": {"type": "string", "default": "\u0000"}})),
                 422, "parameters")
    assert_error(api.post(URL, json=body(entry_point="a\u0000.sh")), 422, "entry_point")
    deep: dict = {}
    node = deep
    for _ in range(500):
        node["x"] = {}
        node = node["x"]
    assert_error(api.post(URL, json=body(name="deep", output_schema=deep)), 422, "output_schema")
    assert rows(Action) == 1


def test_remote_refs_in_parameters_are_never_fetched(api, create_pack):
    create_pack("acme")
    response = api.post(URL, json=body(parameters={
        "x": {"$ref": "http://127.0.0.1:9/schema.json", "default": 1}}))
    assert_error(response, 422, "parameters")


def test_unicode_description(api, create_pack):
    create_pack("acme")
    response = api.post(URL, json=body(description="Grüße 🚀 \u202e"))
    assert response.status_code == 201
    assert api.get(f"{URL}/acme.hello").json["description"] == "Grüße 🚀 \u202e"


def test_body_over_the_limit_is_413(api, app, create_pack, rows):
    create_pack("acme")
    assert_too_large(api, "POST", URL, app.config["MAX_BODY_BYTES"], lambda: rows(Action))


def test_permissions(anonymous, client_as, scoped_client, create_action):
    create_action("acme.run")
    create_action("other.run")
    assert_error(anonymous.get(f"{URL}/acme.run"), 401)
    viewer = client_as("viewer")
    assert len(viewer.get(URL).json) == 2
    assert_error(viewer.patch(f"{URL}/acme.run", json={"enabled": False}), 403)

    scoped = scoped_client({"actions:view": "acme", "actions:create": "acme", "actions:update": "acme"})
    assert refs(scoped.get(URL)) == ["acme.run"]
    assert_error(scoped.get(f"{URL}/other.run"), 403)
    assert scoped.post(URL, json=body()).status_code == 201
    assert_error(scoped.post(URL, json=body(pack="other")), 403)
    assert scoped.patch(f"{URL}/acme.run", json={"enabled": False}).status_code == 200
    assert_error(scoped.patch(f"{URL}/other.run", json={"enabled": False}), 403)
