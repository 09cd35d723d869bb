"""The audit log: every mutating call (success, failure, denied) and secret reads, nothing secret."""

from __future__ import annotations

import json
import logging

from sqlalchemy import select

from app.db import db
from app.models import AuditEntry
from tests.auth.conftest import PASSWORD, bearer
from tests.factories import pagination


def entries_for(request_id: str) -> list[AuditEntry]:
    """Read on a fresh connection: entries are committed outside the request's transaction."""
    with db.engine.connect() as connection:
        rows = connection.execute(select(AuditEntry.__table__).where(AuditEntry.request_id == request_id)).all()
    return rows


def test_a_successful_change_is_audited_with_who_what_which_and_request_id(api, create_pack):
    create_pack("acme")
    answer = api.post("/api/v1/actions", json={"pack": "acme", "name": "hello", "runner_type": "noop"},
                      headers={"X-Request-ID": "req-audit-1"})
    assert answer.status_code == 201
    (entry,) = entries_for("req-audit-1")
    assert (entry.actor, entry.action, entry.resource_type, entry.resource_ref) == ("admin", "actions:create", "actions", "acme.hello")
    assert (entry.outcome, entry.status_code) == ("success", 201)
    assert entry.details["method"] == "POST" and entry.created_at is not None


def test_failed_and_rolled_back_calls_are_audited(api, create_action):
    create_action("acme.used")
    answer = api.patch("/api/v1/actions/acme.used", json={"runner_type": "no-such-runner"},
                       headers={"X-Request-ID": "req-audit-2"})
    assert answer.status_code == 422
    (entry,) = entries_for("req-audit-2")
    assert (entry.outcome, entry.status_code, entry.resource_ref) == ("failure", 422, "acme.used")
    missing = api.delete("/api/v1/actions/acme.nothing", headers={"X-Request-ID": "req-audit-3"})
    assert missing.status_code == 404
    assert entries_for("req-audit-3")[0].outcome == "failure"


def test_denied_and_unauthenticated_calls_are_audited(client_as, anonymous):
    viewer = client_as("viewer")
    assert viewer.delete("/api/v1/roles/viewer", headers={"X-Request-ID": "req-audit-4"}).status_code == 403
    (entry,) = entries_for("req-audit-4")
    assert (entry.action, entry.outcome, entry.status_code, entry.resource_type, entry.resource_ref) == (
        "rbac:manage", "denied", 403, "roles", "viewer")
    assert entry.actor is not None
    assert anonymous.post("/api/v1/roles", json={}, headers={"X-Request-ID": "req-audit-5"}).status_code == 401
    (entry,) = entries_for("req-audit-5")
    assert (entry.actor, entry.outcome, entry.status_code) == (None, "denied", 401)


def test_reads_are_not_audited_but_logins_are_without_the_password(api, create_identity, anonymous):
    api.get("/api/v1/actions", headers={"X-Request-ID": "req-audit-6"})
    assert entries_for("req-audit-6") == []
    create_identity("alice", password=PASSWORD)
    anonymous.post("/api/v1/auth/login", json={"username": "alice", "password": "wrong-password-here"},
                   headers={"X-Request-ID": "req-audit-7"})
    ok = anonymous.post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD},
                        headers={"X-Request-ID": "req-audit-8"})
    failed, succeeded = entries_for("req-audit-7")[0], entries_for("req-audit-8")[0]
    assert (failed.actor, failed.resource_type, failed.outcome) == ("alice", "auth", "denied")
    assert (succeeded.actor, succeeded.outcome) == ("alice", "success")
    anonymous.post("/api/v1/auth/login", json={"username": "my-Secret-passw0rd", "password": "x"},
                   headers={"X-Request-ID": "req-audit-7b"})
    (unknown,) = entries_for("req-audit-7b")
    assert (unknown.actor, unknown.outcome) == (None, "denied")
    stored = json.dumps([dict(failed._mapping), dict(succeeded._mapping), dict(unknown._mapping)], default=str)
    assert "my-Secret-passw0rd" not in stored
    for secret in (PASSWORD, "wrong-password-here", ok.json["access_token"], ok.json["refresh_token"]):
        assert secret not in stored


def test_nothing_secret_from_api_key_creation_is_written(client_as):
    operator = client_as("operator")
    created = operator.post("/api/v1/apikeys", json={"name": "ci"}, headers={"X-Request-ID": "req-audit-9"})
    (entry,) = entries_for("req-audit-9")
    assert entry.resource_type == "apikeys" and entry.resource_ref == "ci"
    assert created.json["key"] not in json.dumps(dict(entry._mapping), default=str)


def test_record_audit_writes_for_services(app, create_identity, token_for):
    from app.services.audit import record_audit

    with app.test_request_context("/api/v1/keys/db_password", headers={"X-Request-ID": "req-audit-10"}):
        from flask import g

        g.request_id = "req-audit-10"
        record_audit("keys:decrypt", "keys", "db_password", status_code=200, details={"scope": "system"})
    (entry,) = entries_for("req-audit-10")
    assert (entry.action, entry.resource_type, entry.resource_ref, entry.outcome) == ("keys:decrypt", "keys", "db_password", "success")
    assert entry.details == {"scope": "system"}


def test_audit_list_filters_newest_first_and_needs_audit_view(api, client_as):
    api.post("/api/v1/roles", json={"name": "audited"}, headers={"X-Request-ID": "req-list-1"})
    api.patch("/api/v1/roles/audited", json={"description": "x"}, headers={"X-Request-ID": "req-list-2"})
    api.delete("/api/v1/roles/audited", headers={"X-Request-ID": "req-list-3"})
    client_as("viewer").post("/api/v1/roles/audited/permissions", json={}, headers={"X-Request-ID": "req-list-4"})
    listed = api.get("/api/v1/audit?resource_type=roles&resource=audited&page_size=3")
    assert listed.status_code == 200
    assert [e["request_id"] for e in listed.json] == ["req-list-4", "req-list-3", "req-list-2"]
    assert pagination(listed)["total"] == 4
    assert [e["action"] for e in listed.json] == ["rbac:manage"] * 3
    denied = api.get("/api/v1/audit?resource=audited&outcome=denied").json
    assert [(e["request_id"], e["status_code"]) for e in denied] == [("req-list-4", 403)]
    by_admin = api.get("/api/v1/audit?resource=audited&actor=admin").json
    assert [e["request_id"] for e in by_admin] == ["req-list-3", "req-list-2", "req-list-1"]
    second = api.get("/api/v1/audit?request_id=req-list-2").json[0]
    since = api.get("/api/v1/audit", query_string={"resource": "audited", "since": second["created_at"]}).json
    assert [e["request_id"] for e in since] == ["req-list-4", "req-list-3", "req-list-2"]
    until = api.get("/api/v1/audit", query_string={"resource": "audited", "until": second["created_at"]}).json
    assert [e["request_id"] for e in until] == ["req-list-1"]
    assert api.get("/api/v1/audit?since=yesterday").status_code == 422
    assert client_as("operator").get("/api/v1/audit").status_code == 403


def test_logout_is_audited_as_the_identity(create_identity, anonymous):
    create_identity("bob", password=PASSWORD)
    tokens = anonymous.post("/api/v1/auth/login", json={"username": "bob", "password": PASSWORD}).json
    anonymous.post("/api/v1/auth/logout", headers={**bearer(tokens["access_token"]), "X-Request-ID": "req-audit-11"}, json={})
    (entry,) = entries_for("req-audit-11")
    assert (entry.actor, entry.action, entry.outcome) == ("bob", "authenticated", "success")


def test_the_audit_names_the_callers_address_and_the_permission_that_was_missing(client_with, create_action,
                                                                                create_trigger):
    create_trigger("acme.hook")
    create_action("other.secret")
    deployer = client_with([("rules:create", "acme"), ("actions:execute", "acme")])
    deployer.client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    # With no trusted proxy (PROXY_HOPS=0) X-Forwarded-For is the client's own text: ignored.
    answer = deployer.post("/api/v1/rules", json={"pack": "acme", "name": "sneaky", "trigger": "acme.hook",
                                                  "action": "other.secret"},
                           headers={"X-Request-ID": "req-audit-review-1", "X-Forwarded-For": "198.51.100.66"})
    assert answer.status_code == 403
    (entry,) = entries_for("req-audit-review-1")
    assert entry.remote_addr == "203.0.113.9"
    assert (entry.action, entry.outcome) == ("rules:create", "denied")
    assert entry.details["denied_permission"] == "actions:execute"


def test_rate_limited_logins_are_audited_as_denied(create_identity, anonymous, app):
    create_identity("rosa", password=PASSWORD)
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    for i in range(limit):
        anonymous.post("/api/v1/auth/login", json={"username": "rosa", "password": f"wrong-{i:04d}-guess"})
    blocked = anonymous.post("/api/v1/auth/login", json={"username": "rosa", "password": PASSWORD},
                             headers={"X-Request-ID": "req-audit-review-2"})
    assert blocked.status_code == 429
    (entry,) = entries_for("req-audit-review-2")
    assert (entry.action, entry.outcome, entry.status_code) == ("public", "denied", 429)
    assert PASSWORD not in json.dumps(entry.details)


def test_unauthenticated_entries_over_budget_are_dropped_with_one_warning(anonymous, caplog):
    from app.services.audit import ANONYMOUS_ENTRIES

    budget = ANONYMOUS_ENTRIES.amount
    with caplog.at_level(logging.WARNING, logger="patchbay.audit"):
        for i in range(budget + 5):
            answer = anonymous.post("/api/v1/roles", json={}, headers={"X-Request-ID": f"req-budget-{i}"})
            assert answer.status_code == 401
    written = [i for i in range(budget + 5) if entries_for(f"req-budget-{i}")]
    assert written == list(range(budget))
    # One line says entries are being dropped; not one line per dropped entry.
    warnings = [record for record in caplog.records if "over budget" in record.getMessage()]
    assert len(warnings) == 1, [record.getMessage() for record in warnings]


def test_a_forwarded_for_hop_with_a_nul_is_still_audited(behind_one_proxy, admin, token_for):
    # A proxy passes on whatever follows the last comma it did not write: a NUL in it must not
    # make PostgreSQL refuse (and so lose) the entry.
    api = behind_one_proxy(token_for(admin))
    answer = api.post("/api/v1/roles", json={"name": "hop-role"},
                      headers={"X-Request-ID": "req-audit-review-3", "X-Forwarded-For": "1.2.3.4, 5.6.7.8\x00x"})
    assert answer.status_code == 201
    (entry,) = entries_for("req-audit-review-3")
    assert entry.remote_addr == "5.6.7.8\\x00x"


def test_an_anonymous_call_to_no_route_is_not_audited(anonymous, api):
    for method, path, headers in [("POST", "/api/v1/no-such-route", {}), ("DELETE", "/api/v1/packs", {}),
                                  ("PUT", "/api/v1/whatever/1", {"Authorization": "Bearer forged"})]:
        request_id = f"req-audit-unrouted-{method}"
        answer = anonymous.request(method, path, headers={**headers, "X-Request-ID": request_id})
        assert answer.status_code in (404, 405)
        assert entries_for(request_id) == []
    # Someone authenticated who calls no route is audited: it may be a probe worth seeing.
    assert api.delete("/api/v1/packs", headers={"X-Request-ID": "req-audit-unrouted-admin"}).status_code == 405
    (entry,) = entries_for("req-audit-unrouted-admin")
    assert (entry.actor, entry.action, entry.status_code) == ("admin", "unrouted", 405)


def test_a_statement_run_alone_that_fails_leaves_no_broken_connection_in_the_pool(app):
    # The audit entry's own statement runs on a pooled connection in autocommit mode; one
    # that failed must not come back to the next caller half configured.
    import psycopg
    import pytest

    with app.app_context():
        for _ in range(db.engine.pool.size() + 1):
            with pytest.raises(psycopg.errors.UndefinedTable):
                db.run_alone("INSERT INTO no_such_table (x) VALUES (%s)", (1,))
        with db.engine.connect() as connection:
            # Still a transaction per use: a rolled back insert is not kept.
            connection.execute(AuditEntry.__table__.insert().values(action="test:rolled_back", resource_type="test",
                                                                    outcome="success", details={}))
            connection.rollback()
            kept = connection.execute(select(AuditEntry.__table__).where(AuditEntry.action == "test:rolled_back")).all()
        db.run_alone("INSERT INTO audit_log (action, resource_type, outcome, details) VALUES (%s, %s, %s, %s)",
                     ("test:run_alone", "test", "success", "{}"))
        with db.engine.connect() as connection:
            rows = connection.execute(select(AuditEntry.__table__).where(AuditEntry.action == "test:run_alone")).all()
    assert kept == [] and len(rows) == 1
