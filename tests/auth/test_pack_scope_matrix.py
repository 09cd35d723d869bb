"""Pack-scoped grants, checked on every route the app registers.

A caller holding every pack-scopable permission on pack ``acme`` only is pointed at the
content and executions of pack ``other`` through each route whose permission is
pack-scopable: a read of one object is a 403, a list shows nothing of ``other``, and no
change succeeds. A route added later without its pack check fails here.
"""

from __future__ import annotations

import re

import pytest

from app.security.permissions import PERMISSIONS, is_pack_scopable
from tests.auth.test_authorisation_matrix import all_routes

SCOPED = [(p, "acme") for p in PERMISSIONS if is_pack_scopable(p)]
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Bodies that would succeed for an admin, so a missing pack check shows as a 2xx.
BODIES = {
    "/api/v1/packs": {"name": "other2"},
    "/api/v1/actions": {"pack": "other", "name": "made", "runner_type": "noop"},
    "/api/v1/triggers": {"pack": "other", "name": "made"},
    "/api/v1/sensors": {"pack": "other", "name": "made", "class_name": "Made", "entry_point": "sensors/made.py"},
    "/api/v1/rules": {"pack": "other", "name": "made", "trigger": "other.thing", "action": "other.thing"},
    "/api/v1/packs/register": {"packs": ["other"]},
    "/api/v1/actions/<ref>/execute": {"parameters": {}},
    "/api/v1/executions/<int:execution_id>/rerun": {"parameters": {}},
    "/api/v1/actions/<ref>": {"description": "changed"},
    "/api/v1/triggers/<ref>": {"description": "changed"},
    "/api/v1/sensors/<ref>": {"description": "changed"},
    "/api/v1/rules/<ref>": {"description": "changed"},
    "/api/v1/packs/<name>": {"description": "changed"},
    "/api/v1/events": {"trigger": "other.thing", "payload": {}},
    "/api/v1/rules/<ref>/test": {"payload": {}},
    "/api/v1/inquiries/<int:inquiry_id>/respond": {"response": {"continue": True}},
}
# Relationship lists whose object may be in any pack: they show the rules the caller may view.
RELATION_LISTS = {"/api/v1/actions/<ref>/rules", "/api/v1/triggers/<ref>/rules"}


@pytest.fixture
def other_pack(api, create_action, create_trigger, create_rule, db_session):
    """Pack ``other`` with one of everything (all named ``other.thing``) and an execution."""
    from app.models import Enforcement, Inquiry
    from app.services.sensors import create_sensor

    create_action("acme.deploy")
    create_action("other.thing")
    create_trigger("other.thing")
    create_rule("other.thing", trigger="other.thing", action="other.thing")
    create_sensor({"pack_name": "other", "name": "thing", "class_name": "Thing", "entry_point": "sensors/thing.py"})
    # A webhook declared by pack other's rule, at the url the matrix fills in, with one request logged.
    create_rule("other.hook", trigger="core.webhook", action="other.thing", trigger_parameters={"url": "other.thing"})
    db_session.commit()
    assert api.post("/api/v1/webhooks/other.thing", json={}).status_code == 202
    execution = api.post("/api/v1/actions/other.thing/execute", json={"parameters": {}})
    assert execution.status_code == 201, execution.json
    event = api.post("/api/v1/events", json={"trigger": "other.thing", "payload": {}})
    assert event.status_code == 202, event.json
    enforcement = Enforcement(event_id=event.json["id"], rule_ref="other.thing", pack_name="other", status="failed")
    inquiry = Inquiry(execution_id=execution.json["id"], root_execution_id=execution.json["id"], route="other.thing",
                      schema={"type": "object", "properties": {"continue": {"type": "boolean"}}})
    db_session.add_all([enforcement, inquiry])
    db_session.commit()
    return {"execution_id": execution.json["id"], "event_id": event.json["id"], "enforcement_id": enforcement.id,
            "inquiry_id": inquiry.id}


def url_for_other(rule, other_pack) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name in other_pack:
            return str(other_pack[name])
        return "other" if name == "name" else "other.thing"

    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", value, rule.rule)


def scoped_routes(app):
    return [(rule, method, access) for rule, method, access in all_routes(app)
            if access.permission is not None and is_pack_scopable(access.permission)]


def test_a_grant_on_one_pack_reveals_and_changes_nothing_of_another(app, api, client_with, other_pack):
    acme_only = client_with(SCOPED)
    wrong = []
    checked = 0
    for rule, method, _access in scoped_routes(app):
        url = url_for_other(rule, other_pack)
        kwargs = {"json": BODIES.get(rule.rule, {})} if method in {"POST", "PUT", "PATCH"} else {}
        answer = acme_only.request(method, url, **kwargs)
        checked += 1
        if method in MUTATING:
            if answer.status_code < 400:
                wrong.append(f"{method} {rule.rule} changed pack other -> {answer.status_code}")
        elif answer.status_code == 200:
            body = answer.get_data(as_text=True)
            if "other" in body:
                wrong.append(f"{method} {rule.rule} shows pack other: {body[:120]}")
            if "<" in rule.rule and rule.rule not in RELATION_LISTS:
                wrong.append(f"{method} {rule.rule} reads an object of pack other -> 200")
        elif answer.status_code != 403:
            wrong.append(f"{method} {rule.rule} -> {answer.status_code} (expected 403 or a filtered list)")
    assert wrong == []
    assert checked > 25


def test_the_same_calls_do_reach_pack_other_for_an_admin(app, api, other_pack):
    """The matrix above is not vacuous: every read it tries shows pack other to an admin."""
    empty = []
    for rule, method, _ in scoped_routes(app):
        if method == "GET":
            answer = api.get(url_for_other(rule, other_pack))
            # (The execution has no output lines yet and no children: its logs and children
            # are empty lists.)
            shows_other = "other" in answer.get_data(as_text=True) or rule.rule.endswith(("/logs", "/children"))
            if answer.status_code != 200 or not shows_other:
                empty.append(f"GET {rule.rule} -> {answer.status_code}")
    assert empty == []
