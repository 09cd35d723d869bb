"""The inquiries API on rows alone (no worker): who sees and may answer which inquiry, the
list's filters, the shapes of answers and errors, hostile input, secrets in the audit log."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from app.db import db
from app.models import AuditEntry, Execution
from tests.api.helpers import DEEP, assert_error
from tests.factories import pagination
from tests.inquiries.conftest import APPROVAL, answer

ANSWERERS = [("inquiries:view", None), ("inquiries:respond", None)]


def ids(response) -> list[int]:
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()]


def audit_entries(inquiry_id: int) -> list:
    """Read on a fresh connection: entries are committed outside the request's transaction."""
    with db.engine.connect() as connection:
        return connection.execute(select(AuditEntry.__table__).where(
            AuditEntry.resource_type == "inquiries", AuditEntry.resource_ref == str(inquiry_id))
            .order_by(AuditEntry.id)).all()


def test_an_inquiry_reads_with_every_field(api, open_inquiry):
    inquiry = open_inquiry(route="ops", users=["admin"], roles=["admin"], ttl=90)

    body = api.get(f"/api/v1/inquiries/{inquiry.id}").get_json()

    assert body["id"] == inquiry.id and body["execution"] == inquiry.execution_id
    assert body["root_execution"] == inquiry.execution_id  # alone, it is its own root
    assert (body["status"], body["route"], body["users"], body["roles"]) == ("pending", "ops", ["admin"], ["admin"])
    assert body["schema"] == APPROVAL and body["ttl"] == 90
    assert body["expires_at"] and body["created_at"]
    assert (body["response"], body["responder"], body["responded_at"]) == (None, None, None)


def test_the_default_list_is_the_pending_inquiries_the_caller_may_answer(api, open_inquiry, person):
    name, alice = person(ANSWERERS, roles=[], name="alice")
    plain = open_inquiry()
    for_alice = open_inquiry(users=["alice"])
    for_bob = open_inquiry(users=["bob"])
    for_approvers = open_inquiry(roles=["approvers"])
    answered = open_inquiry()
    assert answer(api, answered.id, {"approved": True}).status_code == 200

    assert ids(alice.get("/api/v1/inquiries")) == [for_alice.id, plain.id]
    # Everything pending alice may view, answerable or not, newest first.
    assert ids(alice.get("/api/v1/inquiries?answerable=false")) == [
        for_approvers.id, for_bob.id, for_alice.id, plain.id]
    assert ids(alice.get("/api/v1/inquiries?status=responded")) == [answered.id]
    assert ids(alice.get("/api/v1/inquiries?status=pending&sort=id")) == [
        plain.id, for_alice.id, for_bob.id, for_approvers.id]
    assert ids(alice.get(f"/api/v1/inquiries?execution={for_bob.execution_id}&answerable=false")) == [for_bob.id]
    assert ids(alice.get(f"/api/v1/inquiries?execution={for_bob.execution_id}")) == []
    # Holding every permission is not being alice, bob or an approver.
    assert ids(api.get("/api/v1/inquiries")) == [plain.id]


def test_the_list_filters_by_root_and_pages(api, open_inquiry):
    first = open_inquiry("tools", root_pack="acme")
    second = open_inquiry("tools", root_pack="acme")
    open_inquiry()
    root = api.get(f"/api/v1/inquiries/{first.id}").get_json()["root_execution"]
    assert root != first.execution_id

    assert ids(api.get(f"/api/v1/inquiries?root={root}")) == [first.id]
    page = api.get("/api/v1/inquiries?page=2&page_size=1&sort=created_at")
    assert ids(page) == [second.id]
    assert pagination(page)["total"] == 3
    assert_error(api.get("/api/v1/inquiries?status=waiting"), 422, "status")
    assert_error(api.get("/api/v1/inquiries?execution=0"), 422, "execution")
    assert_error(api.get("/api/v1/inquiries?sort=route"), 422, "sort")


def test_an_answer_is_recorded_audited_and_wakes_the_execution(api, open_inquiry):
    inquiry = open_inquiry()

    response = answer(api, inquiry.id, {"approved": True, "reason": "looks fine"})

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["responder"]) == ("responded", "admin")
    assert body["response"] == {"approved": True, "reason": "looks fine"} and body["responded_at"]
    execution = db.session.get(Execution, inquiry.execution_id, populate_existing=True)
    assert execution.wakeups == 1  # its core.ask is resumed to read the answer
    entry = next(e for e in audit_entries(inquiry.id) if "response" in e.details)
    assert (entry.actor, entry.action, entry.outcome) == ("admin", "inquiries:respond", "success")
    assert entry.details["responder"] == "admin" and entry.details["execution_id"] == inquiry.execution_id
    assert entry.details["response"] == {"approved": True, "reason": "looks fine"}


def test_a_secret_property_is_masked_in_the_answer_and_the_audit_log(api, open_inquiry):
    schema = {"type": "object", "properties": {
        "approved": {"type": "boolean"}, "otp": {"type": "string", "secret": True},
        "account": {"type": "object", "properties": {"pin": {"type": "string", "secret": True}}}}}
    inquiry = open_inquiry(schema=schema)

    response = answer(api, inquiry.id, {"approved": True, "otp": "s3cr3t-otp", "account": {"pin": "9911"}})

    assert response.status_code == 200, response.get_json()
    masked = {"approved": True, "otp": "********", "account": {"pin": "********"}}
    assert response.get_json()["response"] == masked
    assert api.get(f"/api/v1/inquiries/{inquiry.id}").get_json()["response"] == masked
    entries = audit_entries(inquiry.id)
    assert any(e.details.get("response") == masked for e in entries)
    assert "s3cr3t-otp" not in json.dumps([e.details for e in entries]) and "9911" not in json.dumps(
        [e.details for e in entries])
    # Nobody reads the values back, so the table does not hold them either.
    stored = db.session.execute(text("SELECT response::text FROM inquiries WHERE id = :id"),
                                {"id": inquiry.id}).scalar_one()
    assert "s3cr3t-otp" not in stored and "9911" not in stored and '"otp": "********"' in stored


def test_an_answer_of_the_wrong_shape_names_the_field(api, open_inquiry):
    inquiry = open_inquiry()

    wrong_type = assert_error(answer(api, inquiry.id, {"approved": "maybe"}), 422, "response")
    assert list(wrong_type["errors"]["response"]) == ["approved"]
    assert "boolean" in wrong_type["errors"]["response"]["approved"][0]
    missing = assert_error(answer(api, inquiry.id, {"reason": "no"}), 422, "response")
    assert missing["errors"]["response"] == {"approved": ["Missing data for required field."]}
    extra = assert_error(answer(api, inquiry.id, {"approved": True, "sneaky": 1}), 422, "response")
    assert "sneaky" in extra["errors"]["response"]["_schema"][0]
    assert_error(answer(api, inquiry.id, "yes"), 422, "response")
    assert_error(answer(api, inquiry.id, None), 422, "response")
    assert_error(api.post(f"/api/v1/inquiries/{inquiry.id}/respond", json={}), 422, "response")
    assert_error(api.post(f"/api/v1/inquiries/{inquiry.id}/respond",
                          json={"response": {"approved": True}, "extra": 1}), 422, "extra")
    assert api.get(f"/api/v1/inquiries/{inquiry.id}").get_json()["status"] == "pending"


def test_a_second_answer_or_an_answer_after_cancel_is_a_conflict(api, open_inquiry):
    answered, canceled = open_inquiry(), open_inquiry()
    assert answer(api, answered.id, {"approved": False}).status_code == 200
    assert api.post(f"/api/v1/inquiries/{canceled.id}/cancel").get_json()["status"] == "canceled"

    again = assert_error(answer(api, answered.id, {"approved": True}), 409, "status")
    assert again["errors"]["status"] == ["responded"]
    assert assert_error(answer(api, canceled.id, {"approved": True}), 409)["errors"]["status"] == ["canceled"]
    assert assert_error(api.post(f"/api/v1/inquiries/{canceled.id}/cancel"), 409)["errors"]["status"] == ["canceled"]
    assert assert_error(api.post(f"/api/v1/inquiries/{answered.id}/cancel"), 409)["errors"]["status"] == ["responded"]
    assert api.get(f"/api/v1/inquiries/{answered.id}").get_json()["response"] == {"approved": False}


def test_only_the_named_users_may_answer_not_even_an_admin(api, open_inquiry, person):
    inquiry = open_inquiry(users=["carol"])
    _, dave = person(ANSWERERS, name="dave")
    _, carol = person(ANSWERERS, name="carol")

    for stranger in (api, dave):
        denied = assert_error(answer(stranger, inquiry.id, {"approved": True}), 403, "users")
        assert denied["errors"]["users"] == ["carol"]
        assert_error(stranger.post(f"/api/v1/inquiries/{inquiry.id}/cancel"), 403, "users")
    response = answer(carol, inquiry.id, {"approved": True})
    assert response.status_code == 200 and response.get_json()["responder"] == "carol"


def test_a_named_user_still_needs_inquiries_respond(open_inquiry, person):
    inquiry = open_inquiry(users=["erin"])
    _, erin = person([("inquiries:view", None)], name="erin")

    assert_error(answer(erin, inquiry.id, {"approved": True}), 403, "permission")
    assert erin.get(f"/api/v1/inquiries/{inquiry.id}").get_json()["status"] == "pending"


def test_only_holders_of_a_named_role_may_answer(open_inquiry, person, create_role):
    approvers = create_role([("inquiries:view", "acme")], name="approvers")
    inquiry = open_inquiry(roles=["approvers", "managers"])
    _, outsider = person(ANSWERERS)
    _, approver = person([("inquiries:respond", "acme")], roles=[approvers])

    assert assert_error(answer(outsider, inquiry.id, {"approved": True}), 403, "roles")["errors"]["roles"] == [
        "approvers", "managers"]
    assert ids(outsider.get("/api/v1/inquiries")) == []
    assert ids(approver.get("/api/v1/inquiries")) == [inquiry.id]
    assert answer(approver, inquiry.id, {"approved": True}).status_code == 200


def test_grants_on_one_pack_cover_the_inquiries_of_its_root_executions(open_inquiry, person):
    ours = open_inquiry("acme")
    in_our_workflow = open_inquiry("tools", root_pack="acme")  # a core.ask-like step of an acme workflow
    theirs = open_inquiry("other")
    their_step = open_inquiry("acme", root_pack="other")
    _, acme_only = person([("inquiries:view", "acme"), ("inquiries:respond", "acme")])

    assert ids(acme_only.get("/api/v1/inquiries")) == [in_our_workflow.id, ours.id]
    assert ids(acme_only.get("/api/v1/inquiries?answerable=false")) == [in_our_workflow.id, ours.id]
    for foreign in (theirs, their_step):
        assert_error(acme_only.get(f"/api/v1/inquiries/{foreign.id}"), 403, "permission")
        assert_error(answer(acme_only, foreign.id, {"approved": True}), 403, "permission")
        assert_error(acme_only.post(f"/api/v1/inquiries/{foreign.id}/cancel"), 403, "permission")
    assert answer(acme_only, in_our_workflow.id, {"approved": True}).status_code == 200
    assert acme_only.post(f"/api/v1/inquiries/{ours.id}/cancel").status_code == 200


def test_a_viewer_may_read_but_neither_answer_nor_cancel(open_inquiry, client_as):
    inquiry = open_inquiry()
    viewer = client_as("viewer")

    assert viewer.get(f"/api/v1/inquiries/{inquiry.id}").status_code == 200
    assert ids(viewer.get("/api/v1/inquiries")) == []  # nothing the viewer may answer
    assert ids(viewer.get("/api/v1/inquiries?answerable=false")) == [inquiry.id]
    assert_error(answer(viewer, inquiry.id, {"approved": True}), 403, "permission")
    assert_error(viewer.post(f"/api/v1/inquiries/{inquiry.id}/cancel"), 403, "permission")


def test_cancel_closes_the_inquiry_and_wakes_its_execution(api, open_inquiry):
    inquiry = open_inquiry()

    body = api.post(f"/api/v1/inquiries/{inquiry.id}/cancel").get_json()

    assert (body["status"], body["response"], body["responder"]) == ("canceled", None, None)
    assert db.session.get(Execution, inquiry.execution_id, populate_existing=True).wakeups == 1


@pytest.mark.parametrize("url", ["/api/v1/inquiries/{}", "/api/v1/inquiries/{}/respond", "/api/v1/inquiries/{}/cancel"])
@pytest.mark.parametrize("unknown", ["987654321", str(2**63), str(2**70)])
def test_unknown_inquiries_are_404_in_the_error_shape(api, url, unknown):
    method = api.get if url.endswith("{}") else api.post
    kwargs = {"json": {"response": {"approved": True}}} if url.endswith("respond") else {}
    assert_error(method(url.format(unknown), **kwargs), 404)


def test_hostile_answers_are_refused_without_a_trace(app, api, open_inquiry):
    schema = {"type": "object"}
    inquiry = open_inquiry(schema=schema)
    url = f"/api/v1/inquiries/{inquiry.id}/respond"
    nested: dict = {}
    for _ in range(60):
        nested = {"a": nested}

    assert_error(answer(api, inquiry.id, nested), 422, "response")
    assert_error(answer(api, inquiry.id, {"text": "x\u0000y"}), 422, "response")
    huge = json.dumps({"response": {"text": "x" * app.config["MAX_BODY_BYTES"]}})
    assert_error(api.post(url, data=huge, headers={"Content-Type": "application/json"}), 413)
    assert_error(api.post(url, data='{"response": ' + DEEP + "}", headers={"Content-Type": "application/json"}), 400)
    assert_error(api.post(url, data="[]", headers={"Content-Type": "application/json"}), 422)
    assert_error(api.post(url, data='{"response": ', headers={"Content-Type": "application/json"}), 400)
    assert api.get(f"/api/v1/inquiries/{inquiry.id}").get_json()["status"] == "pending"
    assert answer(api, inquiry.id, {"text": "fine"}).status_code == 200


def test_every_route_is_documented_with_its_permission(anonymous):
    spec = anonymous.get("/api/v1/openapi.json").get_json()
    expected = {("/api/v1/inquiries", "get"): "inquiries:view",
                ("/api/v1/inquiries/{inquiry_id}", "get"): "inquiries:view",
                ("/api/v1/inquiries/{inquiry_id}/respond", "post"): "inquiries:respond",
                ("/api/v1/inquiries/{inquiry_id}/cancel", "post"): "inquiries:respond"}
    for (path, method), permission in expected.items():
        operation = spec["paths"][path][method]
        assert operation["x-permission"] == permission, (path, method)
        assert {"401", "403"} <= set(operation["responses"]), (path, method)
    respond = spec["paths"]["/api/v1/inquiries/{inquiry_id}/respond"]["post"]
    assert {"404", "409", "422"} <= set(respond["responses"])
