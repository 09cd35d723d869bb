"""Identities, roles, grants and assignments through the API; pack-scoped grants."""

from __future__ import annotations

from sqlalchemy import select

from app.models import PermissionGrant, Role
from tests.auth.conftest import PASSWORD
from tests.factories import pagination


def test_identity_crud_and_role_assignment(api, login):
    created = api.post("/api/v1/identities", json={"name": "alice", "display_name": "Alice", "password": PASSWORD,
                                                   "roles": ["viewer"]})
    assert created.status_code == 201, created.json
    assert created.json["roles"] == ["viewer"] and created.json["has_password"] is True
    assert "password" not in created.json and "password_hash" not in created.json
    ident = created.json["id"]
    assert login("alice").status_code == 200
    assert api.post("/api/v1/identities", json={"name": "alice"}).status_code == 409
    assert api.post(f"/api/v1/identities/{ident}/roles", json={"role": "operator"}).json["roles"] == ["operator", "viewer"]
    assert api.post(f"/api/v1/identities/{ident}/roles", json={"role": "nope"}).status_code == 404
    assert api.delete(f"/api/v1/identities/{ident}/roles/viewer").status_code == 204
    assert api.delete(f"/api/v1/identities/{ident}/roles/viewer").status_code == 404
    assert api.get(f"/api/v1/identities/{ident}").json["roles"] == ["operator"]
    patched = api.patch(f"/api/v1/identities/{ident}", json={"display_name": "Alice A.", "email": "a@example.com"})
    assert patched.status_code == 200 and patched.json["email"] == "a@example.com"
    assert api.patch(f"/api/v1/identities/{ident}", json={"password": "short"}).status_code == 422
    listed = api.get("/api/v1/identities?role=operator")
    assert [i["name"] for i in listed.json] == ["alice"] and pagination(listed)["total"] == 1
    assert api.delete(f"/api/v1/identities/{ident}").status_code == 204
    assert api.get(f"/api/v1/identities/{ident}").status_code == 404


def test_service_accounts_have_no_password(api):
    bad = api.post("/api/v1/identities", json={"name": "bot", "kind": "service", "password": PASSWORD})
    assert bad.status_code == 422
    ok = api.post("/api/v1/identities", json={"name": "bot", "kind": "service"})
    assert ok.status_code == 201 and ok.json["kind"] == "service" and ok.json["has_password"] is False
    # The failed attempt left no half-written row.
    assert [i["name"] for i in api.get("/api/v1/identities?kind=service").json] == ["bot"]


def test_the_last_admin_cannot_lock_everyone_out(api, admin, create_identity):
    assert api.post(f"/api/v1/identities/{admin.id}/disable").status_code == 409
    assert api.delete(f"/api/v1/identities/{admin.id}").status_code == 409
    assert api.delete(f"/api/v1/identities/{admin.id}/roles/admin").status_code == 409
    other_id = create_identity("second-admin", roles=["admin"]).id
    # Still not oneself; but another admin may now be removed.
    assert api.post(f"/api/v1/identities/{admin.id}/disable").status_code == 409
    assert api.delete(f"/api/v1/identities/{admin.id}/roles/admin").status_code == 204
    # Taking effect at once: the caller no longer holds rbac:view.
    assert api.get(f"/api/v1/identities/{other_id}").status_code == 403


def test_roles_crud_and_grants(api, db_session):
    created = api.post("/api/v1/roles", json={"name": "deployer", "description": "runs things",
                                              "grants": [{"permission": "actions:execute", "pack": "acme"},
                                                         {"permission": "executions:view"}]})
    assert created.status_code == 201, created.json
    assert created.json["builtin"] is False
    assert {(g["permission"], g["pack"]) for g in created.json["grants"]} == {("actions:execute", "acme"),
                                                                              ("executions:view", None)}
    granted = api.post("/api/v1/roles/deployer/permissions", json={"permission": "actions:view", "pack": "acme"})
    assert granted.status_code == 201
    assert api.post("/api/v1/roles/deployer/permissions", json={"permission": "actions:view", "pack": "acme"}).status_code == 409
    assert api.delete("/api/v1/roles/deployer/permissions?permission=actions:view&pack=acme").status_code == 204
    assert api.delete("/api/v1/roles/deployer/permissions?permission=actions:view&pack=acme").status_code == 404
    assert api.patch("/api/v1/roles/deployer", json={"description": "deploys"}).json["description"] == "deploys"
    assert api.post("/api/v1/roles", json={"name": "deployer"}).status_code == 409
    assert api.delete("/api/v1/roles/deployer").status_code == 204
    assert api.get("/api/v1/roles/deployer").status_code == 404
    assert db_session.scalar(select(PermissionGrant.id).join(Role).where(Role.name == "deployer")) is None


def test_unknown_permissions_and_unscopable_packs_are_422(api):
    api.post("/api/v1/roles", json={"name": "custom"})
    unknown = api.post("/api/v1/roles/custom/permissions", json={"permission": "actions:fly"})
    assert unknown.status_code == 422 and "permission" in unknown.json["errors"]
    unscopable = api.post("/api/v1/roles/custom/permissions", json={"permission": "keys:decrypt", "pack": "acme"})
    assert unscopable.status_code == 422 and "pack" in unscopable.json["errors"]
    in_create = api.post("/api/v1/roles", json={"name": "bad", "grants": [{"permission": "rbac:manage", "pack": "acme"}]})
    assert in_create.status_code == 422
    assert api.get("/api/v1/roles/bad").status_code == 404
    catalogue = {p["permission"]: p for p in api.get("/api/v1/roles/permissions").json}
    assert catalogue["actions:view"]["pack_scopable"] is True and catalogue["keys:decrypt"]["pack_scopable"] is False


def test_builtin_roles_cannot_be_changed_or_deleted(api):
    assert api.delete("/api/v1/roles/admin").status_code == 409
    assert api.patch("/api/v1/roles/viewer", json={"description": "mine now"}).status_code == 409
    assert api.post("/api/v1/roles/viewer/permissions", json={"permission": "keys:decrypt"}).status_code == 409
    assert api.delete("/api/v1/roles/viewer/permissions?permission=actions:view").status_code == 409
    viewer = api.get("/api/v1/roles/viewer").json
    assert viewer["builtin"] is True and "keys:decrypt" not in {g["permission"] for g in viewer["grants"]}
    assert {r["name"] for r in api.get("/api/v1/roles?builtin=true").json} == {"admin", "operator", "viewer"}


def test_rbac_view_reads_but_cannot_manage(client_with):
    reader = client_with([("rbac:view", None)])
    assert reader.get("/api/v1/identities").status_code == 200
    assert reader.get("/api/v1/roles").status_code == 200
    assert reader.post("/api/v1/roles", json={"name": "x"}).status_code == 403
    assert reader.post("/api/v1/identities", json={"name": "x"}).status_code == 403


def test_a_pack_scoped_grant_allows_exactly_that_pack(client_with, create_action):
    create_action("acme.deploy")
    create_action("acme.build")
    create_action("other.secret_thing")
    scoped = client_with([("actions:view", "acme")])
    listed = scoped.get("/api/v1/actions")
    assert listed.status_code == 200
    assert [a["ref"] for a in listed.json] == ["acme.build", "acme.deploy"]
    assert pagination(listed)["total"] == 2
    assert scoped.get("/api/v1/actions/acme.deploy").status_code == 200
    assert scoped.get("/api/v1/actions/other.secret_thing").status_code == 403
    assert scoped.get("/api/v1/actions?pack=other").json == []
    assert scoped.delete("/api/v1/actions/acme.deploy").status_code == 403
