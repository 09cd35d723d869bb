"""app/services/vault.py against the real OpenBao: token and AppRole logins, KV v2 round trip."""

from __future__ import annotations

import os
import uuid

import hvac
import pytest

from app.services import vault


@pytest.fixture
def approle_config(app):
    """AppRole credentials allowed to use the Patchbay prefix only; the app's config switched to them."""
    root = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
    if "approle/" not in root.sys.list_auth_methods():
        root.sys.enable_auth_method("approle")
    prefix = app.config["VAULT_PREFIX"]
    mount = app.config["VAULT_MOUNT"]
    root.sys.create_or_update_policy("patchbay-test", f'''
path "{mount}/data/{prefix}/*" {{ capabilities = ["create", "read", "update", "delete"] }}
path "{mount}/metadata/{prefix}/*" {{ capabilities = ["read", "delete", "list"] }}
''')
    role = f"patchbay-{uuid.uuid4().hex[:8]}"
    root.auth.approle.create_or_update_approle(role, token_policies=["patchbay-test"], token_ttl="5m")
    role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    saved = {k: app.config[k] for k in ("VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID")}
    app.config.update(VAULT_TOKEN="", VAULT_ROLE_ID=role_id, VAULT_SECRET_ID=secret_id)
    vault._clients.clear()
    yield
    app.config.update(saved)
    vault._clients.clear()
    root.auth.approle.delete_role(role)


def round_trip() -> None:
    path = vault.execution_secret_path(int(uuid.uuid4().int % 10**9))
    vault.write_secret(path, {"password": "s3cret"})
    assert vault.read_secret(path) == {"password": "s3cret"}
    vault.delete_secret(path)
    assert vault.read_secret(path) is None
    vault.delete_secret(path)  # deleting what is gone is fine


def test_token_login_round_trip(app):
    with app.app_context():
        round_trip()


def test_approle_login_round_trip(app, approle_config):
    with app.app_context():
        round_trip()
        assert vault.client().token != os.environ["VAULT_TOKEN"]


def test_unreachable_vault_is_a_503_for_execute(app, api, create_action):
    create_action("vlt.act", parameters={"token": {"type": "string", "secret": True}})
    saved = app.config["VAULT_ADDR"]
    app.config["VAULT_ADDR"] = "http://127.0.0.1:9"  # nothing listens there
    vault._clients.clear()
    try:
        response = api.post("/api/v1/actions/vlt.act/execute", json={"parameters": {"token": "abcdef"}})
    finally:
        app.config["VAULT_ADDR"] = saved
        vault._clients.clear()
    assert response.status_code == 503
    assert response.get_json()["message"] == "Vault (the secret store) is not available."
    assert api.get("/api/v1/executions").get_json() == []
