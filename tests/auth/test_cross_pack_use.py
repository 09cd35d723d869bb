"""Content of one pack that reaches into another needs permission on that other pack."""

from __future__ import annotations

import pytest

ACME_AUTHOR = [(p, "acme") for p in (
    "rules:create", "rules:update", "rules:view", "actions:execute", "actions:view",
    "triggers:view", "sensors:create", "sensors:update", "sensors:view",
)]


@pytest.fixture
def two_packs(create_action, create_trigger, create_rule):
    create_action("acme.deploy")
    create_trigger("acme.hook")
    create_action("other.thing")
    create_trigger("other.secret_hook")
    create_rule("acme.existing", trigger="acme.hook", action="acme.deploy")


def test_a_rule_on_another_packs_trigger_needs_view_on_that_pack(client_with, api, two_packs):
    author = client_with(ACME_AUTHOR)
    body = {"pack": "acme", "name": "spy", "trigger": "other.secret_hook", "action": "acme.deploy"}
    denied = author.post("/api/v1/rules", json=body)
    assert denied.status_code == 403
    assert denied.json["errors"]["permission"] == "triggers:view"
    assert api.get("/api/v1/rules/acme.spy").status_code == 404

    allowed = client_with([*ACME_AUTHOR, ("triggers:view", "other")])
    assert allowed.post("/api/v1/rules", json=body).status_code == 201


def test_moving_a_rule_to_another_packs_trigger_needs_view_on_that_pack(client_with, api, two_packs):
    author = client_with(ACME_AUTHOR)
    response = author.patch("/api/v1/rules/acme.existing", json={"trigger": "other.secret_hook"})
    assert response.status_code == 403
    assert api.get("/api/v1/rules/acme.existing").json["trigger"] == "acme.hook"


def test_a_sensor_emitting_another_packs_trigger_needs_events_create(client_with, api, two_packs):
    body = {"pack": "acme", "name": "poller", "class_name": "Poller", "entry_point": "sensors/poller.py",
            "trigger_types": ["other.secret_hook"]}
    author = client_with(ACME_AUTHOR)
    denied = author.post("/api/v1/sensors", json=body)
    assert denied.status_code == 403
    assert denied.json["errors"]["trigger_types"] == ["other.secret_hook"]
    assert api.get("/api/v1/sensors/acme.poller").status_code == 404

    own = author.post("/api/v1/sensors", json={**body, "trigger_types": ["acme.hook"]})
    assert own.status_code == 201
    assert author.patch("/api/v1/sensors/acme.poller", json={"trigger_types": ["other.secret_hook"]}).status_code == 403

    emitter = client_with([*ACME_AUTHOR, ("events:create", None)])
    assert emitter.patch("/api/v1/sensors/acme.poller", json={"trigger_types": ["other.secret_hook"]}).status_code == 200


@pytest.mark.parametrize("url", ["/api/v1/actions/{}/rules", "/api/v1/triggers/{}/rules"])
def test_relationship_lists_do_not_reveal_whether_another_packs_object_exists(client_with, two_packs, url):
    author = client_with(ACME_AUTHOR)
    existing = "other.thing" if "actions" in url else "other.secret_hook"
    assert author.get(url.format(existing)).status_code == 403
    assert author.get(url.format("other.missing")).status_code == 403
    assert author.get(url.format("acme.missing")).status_code == 404
