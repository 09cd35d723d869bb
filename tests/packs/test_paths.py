"""Which pack directories may be registered: only those inside PACKS_PATH."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import Pack
from app.services.pack_reader import pack_directory
from app.services.rbac import create_role
from tests.packs.conftest import register


@pytest.fixture
def acme(packs_dir):
    packs_dir.write("acme/pack.yaml", 'name: acme\nversion: "1.0.0"\n')
    return packs_dir


@pytest.mark.parametrize("value", ["../x", "acme/../acme", "/etc", "..", ".", "acme\x00", ""])
def test_paths_outside_packs_path_are_refused(api, acme, value):
    response = api.post("/api/v1/packs/register", json={"packs": [value]})
    assert response.status_code == 422, response.json
    assert "packs" in response.json["errors"]


def test_an_absolute_path_inside_packs_path_is_accepted(api, acme):
    response = register(api, str(acme.root / "acme"))
    assert response.status_code == 200, response.json
    assert response.json["packs"][0]["path"] == "acme"


def test_a_symlink_leading_outside_packs_path_is_refused(api, acme, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pack.yaml").write_text('name: elsewhere\nversion: "1.0.0"\n')
    (acme.root / "sneaky").symlink_to(elsewhere)
    response = register(api, "sneaky")
    assert response.status_code == 422
    assert response.json["errors"] == {"packs": ["'sneaky' is not a directory inside PACKS_PATH."]}
    assert api.get("/api/v1/packs/elsewhere").status_code == 404


def test_a_symlink_inside_packs_path_is_followed(api, acme):
    (acme.root / "alias").symlink_to(acme.root / "acme")
    response = register(api, "alias")
    assert response.status_code == 200, response.json
    assert response.json["packs"][0]["path"] == "acme"


def test_an_unknown_pack_is_not_found(api, acme):
    response = register(api, "nosuchpack")
    assert response.status_code == 404
    assert response.json["message"] == "There is no pack 'nosuchpack' in PACKS_PATH."


def test_a_directory_without_pack_yaml_is_not_found(api, acme):
    (acme.root / "notapack").mkdir()
    response = register(api, "notapack")
    assert response.status_code == 404
    assert "no pack.yaml" in response.json["message"]


def test_the_body_is_checked(api, acme):
    assert api.post("/api/v1/packs/register", json={"packs": "acme"}).status_code == 422
    assert api.post("/api/v1/packs/register", json={"packs": []}).status_code == 422
    response = api.post("/api/v1/packs/register", json={"path": "acme"})
    assert response.status_code == 422
    assert "path" in response.json["errors"]


def test_registering_needs_the_permission(client_as, anonymous, acme):
    assert anonymous.post("/api/v1/packs/register", json={"packs": ["acme"]}).status_code == 401
    response = client_as("viewer").post("/api/v1/packs/register", json={"packs": ["acme"]})
    assert response.status_code == 403
    assert client_as("operator").post("/api/v1/packs/register", json={"packs": ["acme"]}).status_code == 200


def test_a_pack_scoped_grant_covers_only_that_pack(app, db_session, create_identity, client_as, packs_dir):
    packs_dir.write("acme/pack.yaml", 'name: acme\nversion: "1.0.0"\n')
    packs_dir.write("other/pack.yaml", 'name: other\nversion: "1.0.0"\n')
    # Refused before its files are read: no details of a pack the caller may not register.
    packs_dir.write("other/actions/bad.yaml", "name: [broken\n")
    create_role("acme_packager", grants=[{"permission": "packs:register", "pack": "acme"}])
    db_session.commit()
    packager = client_as(create_identity("packager", roles=["acme_packager"]))
    assert packager.post("/api/v1/packs/register", json={"packs": ["acme"]}).status_code == 200
    refused = packager.post("/api/v1/packs/register", json={"packs": ["acme", "other"]})
    assert refused.status_code == 403
    assert refused.json["errors"] == {"permission": "packs:register"}
    assert db_session.scalar(select(Pack).where(Pack.name == "other")) is None


def test_pack_directory_resolves_a_stored_path_on_this_host(app, acme, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with app.app_context():
        assert pack_directory("acme") == acme.root / "acme"
        assert pack_directory("../elsewhere") is None
        assert pack_directory("missing") is None
        assert pack_directory(None) is None


def test_a_symlink_loop_is_refused(api, acme):
    (acme.root / "loop").symlink_to(acme.root / "loop")
    response = register(api, "loop")
    assert response.status_code == 422
    assert response.json["errors"] == {"packs": ["'loop' is not a directory inside PACKS_PATH."]}


def test_a_pack_scoped_packager_needs_rights_on_the_packs_its_rules_use(
        api, db_session, create_identity, client_as, packs_dir):
    packs_dir.add("core")
    packs_dir.add("acme")
    assert register(api, "core").status_code == 200
    create_role("acme_only", grants=[{"permission": p, "pack": "acme"}
                                     for p in ("packs:register", "actions:execute", "triggers:view")])
    db_session.commit()
    packager = client_as(create_identity("acme-packager", roles=["acme_only"]))
    # acme's every_minute rule runs core.echo on core.interval_timer: the API would ask for
    # actions:execute and triggers:view on core, so registration asks for them too.
    refused = packager.post("/api/v1/packs/register", json={"packs": ["acme"]})
    assert refused.status_code == 403
    assert refused.json["errors"]["permission"] in {"actions:execute", "triggers:view"}
    assert db_session.scalar(select(Pack).where(Pack.name == "acme")) is None

    create_role("core_user", grants=[{"permission": p, "pack": "core"} for p in ("actions:execute", "triggers:view")])
    db_session.commit()
    trusted = client_as(create_identity("trusted-packager", roles=["acme_only", "core_user"]))
    assert trusted.post("/api/v1/packs/register", json={"packs": ["acme"]}).status_code == 200
