"""The packs API: CRUD by name, config validation, cascade delete, content sub-lists."""

from __future__ import annotations

import pytest

from app.models import Action, Execution, Pack, Rule, Sensor, Trigger
from tests.api.helpers import assert_error, assert_hostile_rejected, assert_too_large, refs, total
from tests.factories import pagination

URL = "/api/v1/packs"
CONFIG_SCHEMA = {
    "type": "object",
    "properties": {"region": {"type": "string"}, "retries": {"type": "integer"},
                   "token": {"type": "string", "secret": True}},
    "required": ["region"],
    "additionalProperties": False,
}


def test_create_get_update_delete_pack(api, rows):
    created = api.post(URL, json={"name": "acme", "version": "1.2.0", "description": "Acme tools",
                                  "author": "Ops", "email": "ops@example.com", "keywords": ["acme", "ops"]})
    assert created.status_code == 201, created.json
    assert created.json["name"] == "acme" and created.json["ref"] == "acme"
    assert created.json["path"] is None
    assert created.json["keywords"] == ["acme", "ops"]

    got = api.get(f"{URL}/acme")
    assert got.status_code == 200
    assert got.json["version"] == "1.2.0" and got.json["email"] == "ops@example.com"

    patched = api.patch(f"{URL}/acme", json={"version": "1.3.0"})
    assert patched.status_code == 200, patched.json
    assert patched.json["version"] == "1.3.0"
    assert patched.json["description"] == "Acme tools"  # untouched fields stay

    assert api.delete(f"{URL}/acme").status_code == 204
    assert_error(api.get(f"{URL}/acme"), 404)
    assert rows(Pack) == 0


def test_defaults_of_a_minimal_pack(api):
    response = api.post(URL, json={"name": "mini"})
    assert response.status_code == 201
    assert response.json["version"] == "0.0.0"
    assert response.json["config"] == {} and response.json["config_schema"] == {}


@pytest.mark.parametrize("body, field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "has.dot"}, "name"),
    ({"name": "has space"}, "name"),
    ({"name": "-leading"}, "name"),
    ({"name": "acme\n"}, "name"),
    ({"name": "ok", "version": "1.0\n"}, "version"),
    ({"name": "x" * 129}, "name"),
    ({"name": 5}, "name"),
    ({"name": "ok", "version": "not a version!"}, "version"),
    ({"name": "ok", "email": "nobody"}, "email"),
    ({"name": "ok", "keywords": "acme"}, "keywords"),
    ({"name": "ok", "keywords": ["x" * 129]}, "keywords"),
    ({"name": "ok", "config": []}, "config"),
    ({"name": "ok", "config_schema": {"type": "nonsense"}}, "config_schema"),
    ({"name": "ok", "config_schema": {"type": "object", "properties": {"a": {"pattern": "("}}}}, "config_schema"),
    ({"name": "ok", "config_schema": {"region": {"type": "strin"}}}, "config_schema"),
    ({"name": "ok", "config_schema": {"region": "string"}}, "config_schema"),
    ({"name": "ok", "config_schema": {"region": {"type": "integer", "default": "x"}}}, "config_schema"),
    ({"name": "ok", "id": 7}, "id"),
    ({"name": "ok", "path": "/etc"}, "path"),
])
def test_invalid_pack_is_422_naming_the_field(api, rows, body, field):
    assert_error(api.post(URL, json=body), 422, field)
    assert rows(Pack) == 0


def test_duplicate_pack_is_409(api, create_pack, rows):
    create_pack("acme")
    body = assert_error(api.post(URL, json={"name": "acme"}), 409, "name")
    assert "acme" in body["message"]
    assert rows(Pack) == 1


def test_config_is_validated_against_config_schema(api, rows):
    bad = api.post(URL, json={"name": "cloud", "config_schema": CONFIG_SCHEMA,
                              "config": {"region": 5, "extra": True}})
    body = assert_error(bad, 422, "config")
    assert any("region" in m for m in body["errors"]["config"])
    assert any("extra" in m for m in body["errors"]["config"])
    assert rows(Pack) == 0

    good = api.post(URL, json={"name": "cloud", "config_schema": CONFIG_SCHEMA,
                               "config": {"region": "eu", "retries": "{{ kv.system.retries }}"}})
    assert good.status_code == 201, good.json

    # A new schema the stored config no longer fits is refused as a whole.
    stricter = {**CONFIG_SCHEMA, "required": ["region", "zone"]}
    assert_error(api.patch(f"{URL}/cloud", json={"config_schema": stricter}), 422, "config")
    assert api.get(f"{URL}/cloud").json["config_schema"] == CONFIG_SCHEMA


def test_stackstorm_config_schema_form(api, rows):
    """config.schema.yaml's flat form ({key: {type, required, secret}}), as registration stores it."""
    schema = {"region": {"type": "string", "required": True}, "port": {"type": "integer", "default": 443},
              "token": {"type": "string", "secret": True}}
    bad = api.post(URL, json={"name": "st2", "config_schema": schema, "config": {"port": "x", "typo": 1}})
    errors = assert_error(bad, 422, "config")["errors"]["config"]
    assert set(errors) == {"region", "port", "typo"}
    assert rows(Pack) == 0
    good = api.post(URL, json={"name": "st2", "config_schema": schema,
                               "config": {"region": "eu", "token": "t0k", "port": "{{ kv.system.port }}"}})
    assert good.status_code == 201, good.json
    assert good.json["config"] == {"region": "eu", "token": "********", "port": "{{ kv.system.port }}"}


def test_unconfigured_pack_is_allowed(api):
    """An empty config is "not configured yet", even when the schema requires keys."""
    response = api.post(URL, json={"name": "later", "config_schema": CONFIG_SCHEMA})
    assert response.status_code == 201, response.json


def test_secret_config_values_are_masked_and_kept_on_round_trip(app, api, db_session):
    api.post(URL, json={"name": "cloud", "config_schema": CONFIG_SCHEMA,
                        "config": {"region": "eu", "token": "s3cr3t"}})
    shown = api.get(f"{URL}/cloud").json
    assert shown["config"] == {"region": "eu", "token": "********"}
    assert "s3cr3t" not in api.get(URL).get_data(as_text=True)

    # Sending back what was read (masked) changes the region and keeps the real token.
    changed = api.patch(f"{URL}/cloud", json={"config": {**shown["config"], "region": "us"}})
    assert changed.status_code == 200, changed.json
    db_session.expire_all()
    stored = db_session.query(Pack).filter_by(name="cloud").one().config
    assert stored == {"region": "us", "token": "********"}  # PostgreSQL never holds it
    from app.services import vault

    with app.test_request_context():
        assert vault.read_secret("packs/cloud/config") == {"/token": "s3cr3t"}


def test_schema_refs_are_never_fetched(api):
    """A remote $ref is unresolvable (422), never an outgoing request from the server."""
    schema = {"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/evil.json"}}}
    body = assert_error(api.post(URL, json={"name": "refs", "config_schema": schema, "config": {"a": 1}}),
                        422, "config")
    assert "unresolvable" in body["errors"]["config"][0]
    local = {"definitions": {"s": {"type": "string"}}, "type": "object", "properties": {"a": {"$ref": "#/definitions/s"}}}
    assert api.post(URL, json={"name": "refs", "config_schema": local, "config": {"a": "x"}}).status_code == 201


def test_update_errors(api, create_pack):
    create_pack("acme")
    assert_error(api.patch(f"{URL}/nope", json={"version": "1.0"}), 404)
    assert_error(api.patch(f"{URL}/acme", json={"name": "renamed"}), 422, "name")
    assert_error(api.patch(f"{URL}/acme", json={"version": 3}), 422, "version")
    assert_error(api.patch(f"{URL}/acme", json={"config_schema": "x"}), 422, "config_schema")
    assert api.get(f"{URL}/acme").json["version"] == "0.0.0"


def test_unknown_pack_is_404_everywhere(api):
    for url in (f"{URL}/nope", f"{URL}/nope/actions", f"{URL}/nope/rules", f"{URL}/nope/sensors",
                f"{URL}/nope/triggers", f"{URL}/no%00pe"):
        assert_error(api.get(url), 404)
    assert_error(api.delete(f"{URL}/nope"), 404)


def test_no_post_route_on_a_pack_name(api, app, create_pack):
    """POST /packs/register belongs to pack registration; this blueprint must not shadow it."""
    create_pack("acme")
    methods = {m for rule in app.url_map.iter_rules() if rule.rule == "/api/v1/packs/<name>"
               for m in rule.methods}
    assert "POST" not in methods
    assert_error(api.post(f"{URL}/acme", json={}), 405)


def test_delete_cascades_to_the_pack_content(api, db_session, create_action, create_trigger, create_rule,
                                             create_sensor, rows):
    create_trigger("acme.hook")
    action = create_action("acme.run")
    create_rule("acme.on_hook", trigger="acme.hook", action="acme.run")
    create_sensor("acme.watch", trigger_types=["acme.hook"])
    create_action("other.keep")
    run = Execution(action_id=action.id, action_ref="acme.run", pack_name="acme", runner_type="noop",
                    rule_ref="acme.on_hook")
    db_session.add(run)
    db_session.commit()
    run_id = run.id
    assert api.delete(f"{URL}/acme").status_code == 204
    assert (rows(Pack), rows(Action), rows(Trigger), rows(Rule), rows(Sensor)) == (1, 1, 0, 0, 0)
    run = db_session.get(Execution, run_id)  # history stays, without the link to the deleted action
    assert (run.action_id, run.action_ref, run.rule_ref) == (None, "acme.run", "acme.on_hook")


def test_delete_refused_while_other_packs_use_its_content(api, create_action, create_trigger, create_rule,
                                                          create_sensor, rows):
    create_trigger("acme.hook")
    create_action("acme.run")
    create_rule("ops.uses_action", trigger="ops.own_hook", action="acme.run")
    create_rule("ops.uses_trigger", trigger="acme.hook", action="ops.own_action")
    create_sensor("ops.emits", trigger_types=["acme.hook"])
    body = assert_error(api.delete(f"{URL}/acme"), 409)
    assert body["errors"] == {"rules": ["ops.uses_action", "ops.uses_trigger"], "sensors": ["ops.emits"]}
    assert "ops.uses_action" in body["message"]
    assert (rows(Pack), rows(Action), rows(Trigger), rows(Rule)) == (2, 2, 2, 2)
    assert api.get(f"{URL}/acme").status_code == 200


def test_content_sub_lists(api, create_action, create_trigger, create_rule, create_sensor):
    create_trigger("acme.hook")
    create_action("acme.b_run")
    create_action("acme.a_run", enabled=False)
    create_rule("acme.on_hook", trigger="acme.hook", action="acme.a_run")
    create_sensor("acme.watch")
    create_action("other.run")

    actions = api.get(f"{URL}/acme/actions")
    assert actions.status_code == 200 and refs(actions) == ["acme.a_run", "acme.b_run"]
    assert total(actions) == 2
    assert refs(api.get(f"{URL}/acme/actions?sort=-ref")) == ["acme.b_run", "acme.a_run"]
    assert refs(api.get(f"{URL}/acme/actions?enabled=false")) == ["acme.a_run"]
    assert refs(api.get(f"{URL}/acme/actions?q=b_")) == ["acme.b_run"]
    assert refs(api.get(f"{URL}/acme/actions?pack=other")) == ["acme.a_run", "acme.b_run"]
    assert refs(api.get(f"{URL}/acme/triggers")) == ["acme.hook"]
    assert refs(api.get(f"{URL}/acme/sensors")) == ["acme.watch"]
    rules = api.get(f"{URL}/acme/rules")
    assert refs(rules) == ["acme.on_hook"]
    assert rules.json[0]["trigger"] == "acme.hook" and rules.json[0]["action"] == "acme.a_run"
    page = api.get(f"{URL}/acme/actions?page=2&page_size=1")
    assert refs(page) == ["acme.b_run"]
    assert_error(api.get(f"{URL}/acme/actions?sort=secret"), 422, "sort")


def test_list_pagination_search_and_sort(api, create_pack):
    for name in ("alpha", "beta", "gamma", "x_y", "xzy", "50%off", "5000off"):
        create_pack(name)
    listed = api.get(URL)
    assert listed.status_code == 200
    assert refs(listed) == sorted(["alpha", "beta", "gamma", "x_y", "xzy", "50%off", "5000off"])
    assert total(listed) == 7
    assert refs(api.get(f"{URL}?sort=-name"))[:2] == ["xzy", "x_y"]
    assert refs(api.get(f"{URL}?q=x_y")) == ["x_y"]        # '_' is literal, not "any character"
    assert refs(api.get(f"{URL}?q=50%25")) == ["50%off"]     # '%' is literal too
    assert refs(api.get(f"{URL}?q=ALPHA")) == ["alpha"]
    page = api.get(f"{URL}?page=2&page_size=3")
    assert refs(page) == ["beta", "gamma", "x_y"]
    assert pagination(page) == {"total": 7, "total_pages": 3, "first_page": 1, "last_page": 3, "page": 2,
                                "previous_page": 1, "next_page": 3}
    assert refs(api.get(f"{URL}?page=9")) == []
    assert api.get(f"{URL}?page=99999999999999999999").json == []
    assert_error(api.get(f"{URL}?page=0"), 422, "page")
    assert_error(api.get(f"{URL}?page_size=101"), 422, "page_size")
    assert_error(api.get(f"{URL}?page=abc"), 422, "page")
    assert_error(api.get(f"{URL}?sort=config"), 422, "sort")
    assert_error(api.get(f"{URL}?q=a%00b"), 422, "q")
    assert_error(api.get(f"{URL}?q=" + "x" * 201), 422, "q")


def test_hostile_bodies_never_5xx(api, create_pack, rows):
    assert_hostile_rejected(api, "POST", URL, {"name": "ok"}, lambda: rows(Pack))
    create_pack("acme")
    assert_hostile_rejected(api, "PATCH", f"{URL}/acme", {}, lambda: rows(Pack))
    assert api.get(f"{URL}/acme").json["description"] == ""


def test_unicode_is_kept(api):
    response = api.post(URL, json={"name": "uni", "description": "Café ☕ 数据 🚀", "author": "Zoë"})
    assert response.status_code == 201
    assert api.get(f"{URL}/uni").json["description"] == "Café ☕ 数据 🚀"


def test_body_over_the_limit_is_413(api, app, create_pack, rows):
    assert_too_large(api, "POST", URL, app.config["MAX_BODY_BYTES"], lambda: rows(Pack))
    create_pack("acme")
    assert_too_large(api, "PATCH", f"{URL}/acme", app.config["MAX_BODY_BYTES"], lambda: rows(Pack))


def test_permissions(anonymous, client_as, scoped_client, create_pack):
    create_pack("acme")
    create_pack("other")
    assert_error(anonymous.get(URL), 401)
    viewer = client_as("viewer")
    assert viewer.get(f"{URL}/acme").status_code == 200
    assert_error(viewer.post(URL, json={"name": "new"}), 403)
    assert_error(viewer.patch(f"{URL}/acme", json={"version": "2.0"}), 403)
    assert_error(viewer.delete(f"{URL}/acme"), 403)

    scoped = scoped_client({"packs:view": "acme", "packs:update": "acme", "actions:view": "acme",
                            "packs:create": "mine"})
    assert refs(scoped.get(URL)) == ["acme"]
    assert scoped.get(f"{URL}/acme").status_code == 200
    assert_error(scoped.get(f"{URL}/other"), 403)
    assert scoped.patch(f"{URL}/acme", json={"version": "2.0"}).status_code == 200
    assert_error(scoped.patch(f"{URL}/other", json={"version": "2.0"}), 403)
    assert scoped.get(f"{URL}/acme/actions").status_code == 200
    assert_error(scoped.get(f"{URL}/other/actions"), 403)
    assert_error(scoped.get(f"{URL}/acme/rules"), 403)
    assert scoped.post(URL, json={"name": "mine"}).status_code == 201
    assert_error(scoped.post(URL, json={"name": "theirs"}), 403)
