"""The triggers API: trigger types with JSON Schemas for parameters and payloads."""

from __future__ import annotations

import pytest

from app.models import Trigger
from tests.api.helpers import assert_error, assert_hostile_rejected, assert_too_large, refs, total

URL = "/api/v1/triggers"
PARAMS = {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"],
          "additionalProperties": False}


def test_create_get_update_delete_trigger(api, create_pack, rows):
    create_pack("acme")
    created = api.post(URL, json={"pack": "acme", "name": "page", "description": "A page changed",
                                  "tags": ["web"], "parameters_schema": PARAMS,
                                  "payload_schema": {"type": "object"}})
    assert created.status_code == 201, created.json
    assert created.json["ref"] == "acme.page" and created.json["pack"] == "acme"
    assert created.json["parameters_schema"] == PARAMS

    got = api.get(f"{URL}/acme.page")
    assert got.status_code == 200 and got.json["tags"] == ["web"]

    patched = api.patch(f"{URL}/acme.page", json={"description": "changed", "payload_schema": {}})
    assert patched.status_code == 200
    assert patched.json["description"] == "changed" and patched.json["payload_schema"] == {}
    assert patched.json["parameters_schema"] == PARAMS

    assert api.delete(f"{URL}/acme.page").status_code == 204
    assert_error(api.get(f"{URL}/acme.page"), 404)
    assert rows(Trigger) == 0


@pytest.mark.parametrize("body, field", [
    ({"name": "t"}, "pack"),
    ({"pack": "acme"}, "name"),
    ({"pack": "acme", "name": "bad name"}, "name"),
    ({"pack": "acme", "name": "x" * 129}, "name"),
    ({"pack": "acme", "name": ["t"]}, "name"),
    ({"pack": "no.pe", "name": "t"}, "pack"),
    ({"pack": "missing", "name": "t"}, "pack"),
    ({"pack": "acme", "name": "t", "parameters_schema": []}, "parameters_schema"),
    ({"pack": "acme", "name": "t", "parameters_schema": {"type": "strin"}}, "parameters_schema"),
    ({"pack": "acme", "name": "t", "payload_schema": {"required": "url"}}, "payload_schema"),
    ({"pack": "acme", "name": "t", "payload_schema": {"properties": {"a": {"minimum": "one"}}}}, "payload_schema"),
    ({"pack": "acme", "name": "t", "tags": "web"}, "tags"),
    ({"pack": "acme", "name": "t", "ref": "acme.other"}, "ref"),
])
def test_invalid_trigger_is_422_naming_the_field(api, create_pack, rows, body, field):
    create_pack("acme")
    assert_error(api.post(URL, json=body), 422, field)
    assert rows(Trigger) == 0


def test_duplicate_ref_is_409(api, create_trigger, rows):
    create_trigger("acme.page")
    body = assert_error(api.post(URL, json={"pack": "acme", "name": "page"}), 409, "ref")
    assert "acme.page" in body["message"]
    assert rows(Trigger) == 1


def test_update_errors(api, create_trigger):
    create_trigger("acme.page", parameters_schema=PARAMS)
    assert_error(api.patch(f"{URL}/acme.nope", json={"description": "x"}), 404)
    assert_error(api.patch(f"{URL}/acme.page", json={"parameters_schema": {"type": 1}}), 422, "parameters_schema")
    assert_error(api.patch(f"{URL}/acme.page", json={"name": "renamed"}), 422, "name")
    assert_error(api.patch(f"{URL}/acme.page", json={"pack": "other"}), 422, "pack")
    assert api.get(f"{URL}/acme.page").json["parameters_schema"] == PARAMS


def test_delete_refused_while_rules_or_sensors_use_it(api, create_trigger, create_rule, create_sensor, rows):
    create_trigger("acme.page")
    create_rule("acme.r2", trigger="acme.page")
    create_rule("ops.r1", trigger="acme.page")
    create_sensor("ops.watch", trigger_types=["acme.page"])
    body = assert_error(api.delete(f"{URL}/acme.page"), 409)
    assert body["errors"] == {"rules": ["acme.r2", "ops.r1"], "sensors": ["ops.watch"]}
    assert "acme.r2" in body["message"]
    assert api.get(f"{URL}/acme.page").status_code == 200
    assert_error(api.delete(f"{URL}/acme.nope"), 404)


def test_rules_of_a_trigger(api, create_trigger, create_rule):
    create_trigger("acme.page")
    create_rule("ops.b", trigger="acme.page")
    create_rule("acme.a", trigger="acme.page")
    create_rule("acme.other")
    listed = api.get(f"{URL}/acme.page/rules")
    assert listed.status_code == 200
    assert refs(listed) == ["acme.a", "ops.b"] and total(listed) == 2
    assert listed.json[0]["trigger"] == "acme.page"
    assert refs(api.get(f"{URL}/acme.page/rules?page=2&page_size=1")) == ["ops.b"]
    assert_error(api.get(f"{URL}/acme.nope/rules"), 404)


def test_rules_of_a_trigger_show_only_visible_rules(scoped_client, create_trigger, create_rule):
    create_trigger("acme.page")
    create_rule("ops.mine", trigger="acme.page")
    create_rule("acme.theirs", trigger="acme.page")
    scoped = scoped_client({"rules:view": "ops", "triggers:view": "acme"})
    listed = scoped.get(f"{URL}/acme.page/rules")
    assert listed.status_code == 200 and refs(listed) == ["ops.mine"] and total(listed) == 1
    # View on the trigger's pack is needed before anything is said about it...
    assert_error(scoped_client({"rules:view": "ops"}).get(f"{URL}/acme.page/rules"), 403)
    # ...and without rules:view the list is empty.
    assert refs(scoped_client({"triggers:view": None}).get(f"{URL}/acme.page/rules")) == []


def test_list_filters_search_sort_and_pages(api, create_trigger):
    for ref in ("acme.b_hook", "acme.bxhook", "acme.a100%", "ops.zeta", "ops.alpha"):
        create_trigger(ref)
    assert refs(api.get(URL)) == ["acme.a100%", "acme.b_hook", "acme.bxhook", "ops.alpha", "ops.zeta"]
    assert refs(api.get(f"{URL}?pack=ops")) == ["ops.alpha", "ops.zeta"]
    assert refs(api.get(f"{URL}?sort=-ref&page_size=2")) == ["ops.zeta", "ops.alpha"]
    assert refs(api.get(f"{URL}?sort=name"))[:2] == ["acme.a100%", "ops.alpha"]
    assert refs(api.get(f"{URL}?q=b_h")) == ["acme.b_hook"]
    assert refs(api.get(f"{URL}?q=%25")) == ["acme.a100%"]
    assert refs(api.get(f"{URL}?pack=none")) == []
    assert total(api.get(f"{URL}?page_size=1")) == 5
    assert api.get(f"{URL}?page=50").json == []
    assert_error(api.get(f"{URL}?page=0"), 422, "page")
    assert_error(api.get(f"{URL}?page_size=101"), 422, "page_size")
    assert_error(api.get(f"{URL}?sort=payload_schema"), 422, "sort")
    assert_error(api.get(f"{URL}?pack=a%00"), 422, "pack")


def test_hostile_bodies_never_5xx(api, create_pack, create_trigger, rows):
    create_pack("acme")
    assert_hostile_rejected(api, "POST", URL, {"pack": "acme", "name": "t"}, lambda: rows(Trigger))
    create_trigger("acme.page")
    assert_hostile_rejected(api, "PATCH", f"{URL}/acme.page", {}, lambda: rows(Trigger))
    nested = {"pack": "acme", "name": "deep", "payload_schema": {"a": {}}}
    node = nested["payload_schema"]["a"]
    for _ in range(200):
        node["b"] = {}
        node = node["b"]
    assert_error(api.post(URL, json=nested), 422, "payload_schema")
    nul_key = {"pack": "acme", "name": "nul", "payload_schema": {"properties": {"a\u0000": {}}}}
    assert_error(api.post(URL, json=nul_key), 422, "payload_schema")
    assert rows(Trigger) == 1


def test_get_with_odd_refs(api):
    for ref in ("nodot", "a%00b", "x" * 5000, "%F0%9F%9A%80.rocket"):
        assert_error(api.get(f"{URL}/{ref}"), 404)


def test_body_over_the_limit_is_413(api, app, create_pack, rows):
    create_pack("acme")
    assert_too_large(api, "POST", URL, app.config["MAX_BODY_BYTES"], lambda: rows(Trigger))


def test_permissions(anonymous, client_as, scoped_client, create_trigger):
    create_trigger("acme.page")
    create_trigger("other.page")
    assert_error(anonymous.get(URL), 401)
    viewer = client_as("viewer")
    assert len(viewer.get(URL).json) == 2
    assert_error(viewer.post(URL, json={"pack": "acme", "name": "x"}), 403)
    assert_error(viewer.delete(f"{URL}/acme.page"), 403)

    scoped = scoped_client({"triggers:view": "acme", "triggers:create": "acme", "triggers:delete": "acme"})
    assert refs(scoped.get(URL)) == ["acme.page"]
    assert_error(scoped.get(f"{URL}/other.page"), 403)
    assert scoped.post(URL, json={"pack": "acme", "name": "new"}).status_code == 201
    assert_error(scoped.post(URL, json={"pack": "other", "name": "new"}), 403)
    assert_error(scoped.delete(f"{URL}/other.page"), 403)
    assert scoped.delete(f"{URL}/acme.new").status_code == 204
