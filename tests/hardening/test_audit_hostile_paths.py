"""A call whose path holds a NUL is still audited: the entry used to be lost, because
PostgreSQL refused the NUL in the entry's resource and details (the call itself got its 4xx)."""

from __future__ import annotations

from tests.hardening.helpers import assert_error


def test_a_nul_in_the_path_is_audited_with_the_nul_spelled_out(api, audit_entries):
    response = api.delete("/api/v1/rules/acme.a%00b", headers={"X-Request-ID": "req-nul-path"})
    assert_error(response, 404)
    (entry,) = audit_entries("req-nul-path")
    assert (entry.action, entry.outcome, entry.status_code) == ("rules:delete", "failure", 404)
    assert entry.resource_ref == "acme.a\\x00b"
    assert entry.details["path"] == "/api/v1/rules/acme.a\\x00b"


def test_an_unrouted_path_with_a_nul_is_audited(api, audit_entries):
    response = api.post("/api/v1/nowhere/%00", headers={"X-Request-ID": "req-nul-unrouted"})
    assert_error(response, 404)
    (entry,) = audit_entries("req-nul-unrouted")
    assert (entry.action, entry.status_code) == ("unrouted", 404)
    assert "\\x00" in entry.details["path"]
