"""Vault stopped and started again, with an OpenBao of this module's own (raft storage on disk,
so a restart keeps its data) and an app and a worker pointed at it.

While Vault is down: what needs a secret answers 503 naming Vault in the one error shape and
leaves no row behind; plain keys, listing keys and the rest of the API keep working; an
execution that needs a secret fails with an error naming Vault. Once Vault is back the same
requests succeed and what was stored before the outage reads back.
"""

from __future__ import annotations

import os
import uuid

import hvac
import pytest
import requests
from sqlalchemy import select, text

from tests.factories import ApiClient
from tests.keys.own_vault import OwnVault
from tests.worker import _committed_client, spawn_worker, stop_group, wait_for, wait_until_done

KEYS = "/api/v1/keys"


def _other_redis_url() -> str:
    """Another database of the test Redis: this module's worker must not take the session
    worker's messages (nor the session worker this module's)."""
    base, _, number = os.environ["REDIS_URL"].rpartition("/")
    return f"{base}/{int(number) - 1 if int(number) > 1 else int(number) + 1}"


@pytest.fixture(scope="module")
def own_vault(tmp_path_factory):
    vault = OwnVault(tmp_path_factory.mktemp("own-vault") / "bao")
    vault.start()
    yield vault
    vault.stop()


@pytest.fixture(scope="module")
def outage_app(app, own_vault):
    """The app (same database) with VAULT_ADDR on the module's OpenBao and a Redis of its own."""
    from app import create_app
    from app.extensions import redis_client
    from app.services import vault

    other = create_app({"TESTING": True, "VAULT_ADDR": own_vault.address, "VAULT_TOKEN": own_vault.root_token,
                        "REDIS_URL": _other_redis_url()})
    with other.app_context():
        redis_client().flushdb()
    yield other
    with other.app_context():
        redis_client().flushdb()
    vault._clients.pop(own_vault.address, None)


@pytest.fixture
def outage_api(outage_app, committed_db) -> ApiClient:
    return _committed_client(outage_app, committed_db, "outage-admin", "admin")


@pytest.fixture
def outage_worker(outage_app, own_vault, tmp_path, worker_packs_path):
    """start() -> a worker on the module's Redis and OpenBao; stopped at the end."""
    started = []

    def start():
        env = {"VAULT_ADDR": own_vault.address, "VAULT_TOKEN": own_vault.root_token,
               "REDIS_URL": outage_app.config["REDIS_URL"]}
        proc = spawn_worker(outage_app, tmp_path / "worker.log", f"outage-{os.getpid()}", worker_packs_path,
                            extra_env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_group(proc)


def assert_vault_unavailable(response) -> None:
    assert response.status_code == 503, response.get_json()
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}, body
    assert body["code"] == 503 and body["status"] == "Service Unavailable"
    assert "Vault" in body["message"] and body["errors"] == {"service": "vault"}
    assert "Traceback" not in response.get_data(as_text=True)


def key_rows(session, name: str) -> list:
    from app.models import Key

    rows = session.scalars(select(Key).where(Key.name == name)).all()
    session.rollback()
    return rows


def test_secrets_through_a_vault_outage_and_a_restart(outage_app, outage_api, outage_worker, own_vault,
                                                      make_action, core_pack, committed_db):
    api = outage_api
    suffix = uuid.uuid4().hex[:8]
    kept, kept_value = f"kept_{suffix}", f"kept-{uuid.uuid4().hex}"
    assert api.post(KEYS, json={"name": kept, "value": kept_value, "secret": True}).status_code == 201
    make_action("vlo.echo", "local-shell-cmd", parameters={
        "token": {"type": "string", "secret": True}, "cmd": {"default": "echo token={{ token }}"}})
    make_action("vlo.kv", "local-shell-cmd", parameters={
        "cmd": {"default": f"echo kv={{{{ st2kv.system.{kept} | decrypt_kv }}}}"}})
    make_action("vlo.retried", "local-shell-cmd", retry={"retries": 1, "on": ["failed"]}, parameters={
        "token": {"type": "string", "secret": True}, "cmd": {"default": "echo token={{ token }}"}})
    # A rule on core.execution_finished listens for failures.
    rule = api.post("/api/v1/rules", json={
        "pack": "vlo", "name": "on_failure", "trigger": "core.execution_finished", "action": "core.noop",
        "criteria": {"trigger.status": {"type": "equals", "pattern": "failed"}}})
    assert rule.status_code == 201, rule.get_json()
    # Queued while Vault is up (its secret stored), run only once Vault is down: no worker yet.
    queued = api.post("/api/v1/actions/vlo.echo/execute", json={"parameters": {"token": "queued-secret"}})
    assert queued.status_code == 201, queued.get_json()
    retried = api.post("/api/v1/actions/vlo.retried/execute", json={"parameters": {"token": "queued-secret"}})
    assert retried.status_code == 201, retried.get_json()

    own_vault.stop()

    # Secrets: 503 naming Vault, in the one error shape, and no row left behind.
    fresh = f"fresh_{suffix}"
    assert_vault_unavailable(api.post(KEYS, json={"name": fresh, "value": "v", "secret": True}))
    assert_vault_unavailable(api.put(f"{KEYS}/{fresh}", json={"value": "v", "secret": True}))
    assert key_rows(committed_db, fresh) == []
    assert_vault_unavailable(api.get(f"{KEYS}/{kept}", query_string={"decrypt": "true"}))
    assert_vault_unavailable(api.put(f"{KEYS}/{kept}", json={"value": "replaced", "secret": True}))
    assert_vault_unavailable(api.delete(f"{KEYS}/{kept}"))
    assert [row.secret for row in key_rows(committed_db, kept)] == [True]
    assert_vault_unavailable(api.post("/api/v1/actions/vlo.echo/execute", json={"parameters": {"token": "t"}}))
    assert sorted(row[0] for row in committed_db.execute(text("SELECT id FROM executions")).all()) == \
        [queued.json["id"], retried.json["id"]]
    committed_db.rollback()
    config_pack = {"name": f"vlocfg{suffix}", "config_schema": {"token": {"type": "string", "secret": True}}}
    assert_vault_unavailable(api.post("/api/v1/packs", json={**config_pack, "config": {"token": "t"}}))
    assert api.get(f"/api/v1/packs/{config_pack['name']}").status_code == 404

    # Everything else keeps working.
    assert api.post("/api/v1/packs", json=config_pack).status_code == 201  # no secret in it
    shown = api.get(f"{KEYS}/{kept}")
    assert shown.status_code == 200 and shown.json["value"] is None and shown.json["secret"] is True
    plain = f"plain_{suffix}"
    assert api.post(KEYS, json={"name": plain, "value": "p"}).status_code == 201
    assert api.put(f"{KEYS}/{plain}", json={"value": "q"}).json["value"] == "q"
    listed = api.get(KEYS, query_string={"prefix": ""})
    assert listed.status_code == 200
    assert {key["name"]: key["value"] for key in listed.json} == {kept: None, plain: "q"}
    assert api.get("/api/v1/actions").status_code == 200
    assert api.get("/api/v1/executions").status_code == 200
    ready = api.get("/ready")
    assert ready.status_code == 503, ready.json
    assert ready.json["status"] == "not ready: vault unreachable" and ready.json["checks"]["database"] == "ok"

    # A worker started now runs the queued execution and one reading a secret key: both fail
    # naming Vault (they never run with a missing value).
    outage_worker()
    from_kv = api.post("/api/v1/actions/vlo.kv/execute", json={"parameters": {}})
    assert from_kv.status_code == 201, from_kv.get_json()
    for execution_id in (queued.json["id"], retried.json["id"], from_kv.json["id"]):
        done = wait_until_done(api, execution_id)
        assert done["status"] == "failed", done
        assert "Vault (the secret store) is not available." in done["error"], done
        assert done["result"] in ({}, None) and "queued-secret" not in str(done)
    # No retry attempt: it would need the secret values Vault cannot give.
    assert committed_db.execute(text("SELECT count(*) FROM executions WHERE rerun_of = :id"),
                                {"id": retried.json["id"]}).scalar() == 0
    committed_db.rollback()
    # The failure is an execution end like any other: the rule on core.execution_finished fires.
    event = wait_for(lambda: api.get("/api/v1/events", query_string={"source": f"execution:{queued.json['id']}"})
                     .json or None, 15)
    assert event[0]["payload"]["status"] == "failed"

    own_vault.start()

    # The same requests succeed; what was written before the outage reads back.
    assert api.get(f"{KEYS}/{kept}", query_string={"decrypt": "true"}).json["value"] == kept_value
    created = api.post(KEYS, json={"name": fresh, "value": "after", "secret": True})
    assert created.status_code == 201, created.get_json()
    assert api.get(f"{KEYS}/{fresh}", query_string={"decrypt": "true"}).json["value"] == "after"
    assert [row.secret for row in key_rows(committed_db, fresh)] == [True]
    echo = api.post("/api/v1/actions/vlo.echo/execute", json={"parameters": {"token": "after-secret"}})
    assert echo.status_code == 201, echo.get_json()
    echoed = wait_until_done(api, echo.json["id"])
    assert echoed["status"] == "succeeded", echoed
    assert echoed["result"]["stdout"].rstrip("\n") == "token=********"
    read_kv = wait_until_done(api, api.post("/api/v1/actions/vlo.kv/execute", json={"parameters": {}}).json["id"])
    assert read_kv["status"] == "succeeded" and read_kv["result"]["stdout"].rstrip("\n") == "kv=********", read_kv
    assert api.get("/ready").status_code == 200

    # The queued execution's secret could not be deleted when it failed: it waits in Vault for
    # the orphan sweep, which removes it (an ended execution's secrets are never needed again).
    from app.services import vault, vault_upkeep

    with outage_app.app_context():
        path = vault.execution_secret_path(queued.json["id"])
        assert vault.read_secret(path) == {"token": "queued-secret"}
        assert queued.json["id"] in vault_upkeep.purge_orphan_execution_secrets()
        assert vault.read_secret(path) is None
        committed_db.rollback()


def test_an_expired_approle_token_is_replaced_by_a_new_login(outage_app, own_vault):
    """With AppRole, a token Vault no longer accepts (expired, revoked) means one more login."""
    from app import create_app
    from app.services import vault

    root = hvac.Client(url=own_vault.address, token=own_vault.root_token)
    if "approle/" not in root.sys.list_auth_methods():
        root.sys.enable_auth_method("approle")
    root.sys.create_or_update_policy("patchbay", '''
path "secret/data/patchbay/*" { capabilities = ["create", "read", "update", "delete"] }
path "secret/metadata/patchbay/*" { capabilities = ["read", "delete", "list"] }
''')
    root.auth.approle.create_or_update_approle("patchbay", token_policies=["patchbay"], token_ttl="10m")
    role_id = root.auth.approle.read_role_id("patchbay")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("patchbay")["data"]["secret_id"]
    approle_app = create_app({"TESTING": True, "VAULT_ADDR": own_vault.address, "VAULT_TOKEN": "",
                              "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id,
                              "REDIS_URL": outage_app.config["REDIS_URL"]})
    vault._clients.pop(own_vault.address, None)  # one client per address: this app's own login
    try:
        with approle_app.app_context():
            vault.write_secret("approle/probe", {"value": "one"})
            first = vault.client().token
            assert first and first != own_vault.root_token
            root.auth.token.revoke(first)
            assert requests.get(f"{own_vault.address}/v1/auth/token/lookup-self",
                                headers={"X-Vault-Token": first}, timeout=5).status_code == 403

            assert vault.read_secret("approle/probe") == {"value": "one"}
            assert vault.client().token not in (first, own_vault.root_token)

            # Down, even logging in is a 503 naming Vault; back up, the login works again.
            vault._clients.pop(own_vault.address, None)
            own_vault.stop()
            with pytest.raises(vault.VaultUnavailable, match="Vault"):
                vault.read_secret("approle/probe")
            own_vault.start()
            assert vault.read_secret("approle/probe") == {"value": "one"}
            vault.delete_secret("approle/probe")
    finally:
        vault._clients.pop(own_vault.address, None)
