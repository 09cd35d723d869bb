"""The datastore from action and sensor code: real python actions on a real worker, and a real
sensor poll, calling the keys API of a real HTTP server with their run token.

This module starts its own worker with PATCHBAY_API_URL pointing at an HTTP server of the
test app, so the values land in the test's PostgreSQL and OpenBao.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from app.models import AuditEntry, Execution, Identity, Key, RunToken, Sensor
from tests.worker import (
    _committed_client,
    readable_by_all,
    spawn_worker,
    stop_group,
    wait_for,
    wait_until_done,
    wait_until_status,
    worker_name,
    worker_packs_path,  # noqa: F401 - fixture
)

ACTION = '''
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from st2common.runners.base_action import Action
from st2common.services.datastore import DatastoreError


def refused(call):
    try:
        call()
    except DatastoreError as exc:
        return str(exc)
    return "allowed"


def status_of(path):
    request = urllib.request.Request(os.environ["ST2_API_URL"] + path,
                                     headers={"X-Auth-Token": os.environ["ST2_AUTH_TOKEN"]})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Kv(Action):
    def run(self, mode, other=""):
        s = self.action_service
        token = os.environ["ST2_AUTH_TOKEN"]
        print("my token is " + token)
        if mode == "roundtrip":
            s.set_value("plain", "v1")
            s.set_value("secret", "s3cr3t-value", encrypt=True)
            s.set_value("mine", "u1", scope="user")
            s.set_value("count", 5, ttl=600)
            s.set_value("gone", "x")
            found = {
                "plain": s.get_value("plain"),
                "secret_hidden": s.get_value("secret"),
                "secret": s.get_value("secret", decrypt=True),
                "mine": s.get_value("mine", scope="user"),
                "count": s.get_value("count"),
                "by_full_name": s.get_value("kvpack:plain", local=False),
                "missing": s.get_value("nope"),
                "listed": sorted(k.name for k in s.list_values()),
                "listed_prefix": [k["name"] for k in s.list_values(prefix="co")],
                "deleted": s.delete_value("gone"),
                "deleted_again": s.delete_value("gone"),
                "other_pack": refused(lambda: s.get_value("otherpack:thing", local=False)),
                "global": refused(lambda: s.set_value("global_" + other, "x", local=False)),
                "theirs": s.get_value("theirs", scope="user"),
                "theirs_named": status_of("/keys/kvpack:theirs?scope=user&user=" + other),
                "executions": status_of("/executions"),
            }
        elif mode == "no_decrypt":
            s.set_value("op_secret", "op-value", encrypt=True)
            s.set_value("op_own", "own-value", scope="user", encrypt=True)
            found = {
                "decrypt": refused(lambda: s.get_value("op_secret", decrypt=True)),
                "own": s.get_value("op_own", scope="user", decrypt=True),
            }
        else:  # hold: keep the token in this process and a child's environment for a while
            child = subprocess.Popen(["sleep", "30"])
            time.sleep(float(other))
            child.kill()
            found = {}
        found["token_reversed"] = token[::-1]
        return found
'''
ACTION_YAML = """---
name: kv
runner_type: python-script
entry_point: kv.py
parameters:
  mode: {type: string, required: true}
  other: {type: string, default: ""}
"""
SHELL_YAML = """---
name: shell
runner_type: local-shell-cmd
parameters:
  cmd: {type: string, required: true}
"""
SENSOR = '''
from st2common.services.datastore import DatastoreError
from st2reactor.sensor.base import PollingSensor


class Cursor(PollingSensor):
    def setup(self):
        pass

    def poll(self):
        n = int(self.sensor_service.get_value("n") or 0) + 1
        self.sensor_service.set_value("n", n)
        try:
            self.sensor_service.set_value("elsewhere:x", "1", local=False)
        except DatastoreError as exc:
            self.sensor_service.set_value("refused", str(exc))

    def cleanup(self):
        pass
'''
SENSOR_YAML = ("---\nclass_name: Cursor\nentry_point: cursor.py\npoll_interval: 60\n"
               "trigger_types:\n  - name: seen\n    payload_schema: {type: object}\n")
# What another action may try to find a running action's token with.
HUNT = r"""
for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline /proc/[0-9]*/fd/0; do
  tr '\0' '\n' < "$f" 2>/dev/null
done
grep -rs ST2_AUTH_TOKEN /tmp /var/tmp /dev/shm 2>&1 | head -c 2000
cat /proc/[0-9]*/environ 2>&1 | head -c 500
"""


@pytest.fixture(scope="module")
def api_server(app):
    """The test app served over HTTP on a free loopback port (the worker's PATCHBAY_API_URL)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def kv_worker(app, api_server, tmp_path_factory, worker_packs_path):  # noqa: F811 - fixture
    """A worker with PATCHBAY_API_URL; workers started without it (the session's) stop taking
    executions meanwhile, so every execution here runs with a token."""
    from app.services.queue import ACTIONS_QUEUE, celery_app

    log_path: Path = tmp_path_factory.mktemp("kv-worker") / "worker.log"
    name = f"pytest-kv-{os.getpid()}"
    proc = spawn_worker(app, log_path, name, worker_packs_path, extra_env={"PATCHBAY_API_URL": api_server})
    with app.app_context():
        control = celery_app().control
        others = [other for reply in control.ping(timeout=1) for other in reply if other != worker_name(name)]
        if others:
            control.cancel_consumer(ACTIONS_QUEUE, destination=others, reply=True)
    yield log_path
    stop_group(proc)
    if others:
        with app.app_context():
            control.add_consumer(ACTIONS_QUEUE, destination=others, reply=True)


@pytest.fixture
def ship_pack(app, committed_db, worker_packs_path, monkeypatch):  # noqa: F811 - fixture
    """Write a pack under the worker's PACKS_PATH (readable by all) and register it."""
    from app.services.pack_loader import register_pack

    monkeypatch.setitem(app.config, "PACKS_PATH", str(worker_packs_path))

    def ship(name: str, files: dict[str, str]) -> None:
        for relative, text in files.items():
            path = worker_packs_path / name / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        readable_by_all(worker_packs_path / name)
        with app.app_context():
            register_pack(name)
            committed_db.commit()

    return ship


@pytest.fixture
def kv_pack(ship_pack):
    ship_pack("kvpack", {"pack.yaml": "---\nname: kvpack\nversion: 1.0.0\n", "actions/kv.yaml": ACTION_YAML,
                         "actions/kv.py": ACTION, "actions/shell.yaml": SHELL_YAML})


def client_named(app, session, role: str):
    """A committed client with a built-in role; ``.name`` is its identity's name."""
    name = f"kv-{role}-{uuid.uuid4().hex[:6]}"
    client = _committed_client(app, session, name, role)
    client.name = name
    return client


@pytest.fixture
def admin(app, committed_db, kv_worker):
    return client_named(app, committed_db, "admin")


@pytest.fixture
def operator(app, committed_db, kv_worker):
    return client_named(app, committed_db, "operator")


def execute(api, parameters: dict, action: str = "kvpack.kv") -> int:
    created = api.post(f"/api/v1/actions/{action}/execute", json={"parameters": parameters})
    assert created.status_code == 201, created.get_json()
    return created.get_json()["id"]


def shown(api, execution: dict) -> str:
    logs = api.get(f"/api/v1/executions/{execution['id']}/logs", query_string={"limit": 1000}).get_json()
    return json.dumps(execution) + "\n" + "\n".join(line["line"] for line in logs)


def keys_named(session, name: str) -> list[Key]:
    session.rollback()
    return list(session.scalars(select(Key).where(Key.name == name)))


def test_an_action_sets_gets_decrypts_lists_and_deletes_its_packs_keys(
        app, admin, kv_pack, committed_db, in_vault, api_server):
    other = Identity(name=f"kv-other-{uuid.uuid4().hex[:6]}", kind="user", enabled=True)
    committed_db.add(other)
    theirs = Key(name="kvpack:theirs", scope="user", owner=other.name, value="not yours")
    committed_db.add(theirs)
    committed_db.commit()

    done = wait_until_done(admin, execute(admin, {"mode": "roundtrip", "other": other.name}), 60)

    assert done["status"] == "succeeded", done
    result = done["result"]["result"]
    token = result.pop("token_reversed")[::-1]
    assert result == {
        "plain": "v1", "secret_hidden": None, "secret": "s3cr3t-value", "mine": "u1", "count": "5",
        "by_full_name": "v1", "missing": None,
        "listed": ["kvpack:count", "kvpack:gone", "kvpack:plain", "kvpack:secret"],
        "listed_prefix": ["kvpack:count"], "deleted": True, "deleted_again": False,
        "other_pack": result["other_pack"], "global": result["global"],
        "theirs": None, "theirs_named": 404, "executions": 401,
    }
    assert "answered 403" in result["other_pack"] and "pack 'kvpack'" in result["other_pack"]
    assert "answered 403" in result["global"]
    # In PostgreSQL and OpenBao, and as any person reads them through the API.
    me = admin.name
    [plain] = keys_named(committed_db, "kvpack:plain")
    assert (plain.scope, plain.owner, plain.value, plain.secret) == ("system", None, "v1", False)
    [secret] = keys_named(committed_db, "kvpack:secret")
    assert secret.secret and secret.value is None
    assert in_vault(secret.vault_path) == {"value": "s3cr3t-value"}
    [mine] = keys_named(committed_db, "kvpack:mine")
    assert (mine.scope, mine.owner, mine.value) == ("user", me, "u1")
    [count] = keys_named(committed_db, "kvpack:count")
    assert count.expires_at is not None
    assert keys_named(committed_db, "kvpack:gone") == []
    assert keys_named(committed_db, f"global_{other.name}") == []
    assert admin.get("/api/v1/keys/kvpack:plain").get_json()["value"] == "v1"
    assert admin.get("/api/v1/keys/kvpack:secret?decrypt=true").get_json()["value"] == "s3cr3t-value"
    # The decrypt is audited, naming the run.
    audits = committed_db.scalars(select(AuditEntry).where(AuditEntry.action == "keys:decrypt",
                                                           AuditEntry.resource_ref == "kvpack:secret")).all()
    assert any(a.actor == me and a.details.get("run") == f"execution {done['id']}" for a in audits)
    # The token shows nowhere: masked in the log and the result, absent from the row.
    everything = shown(admin, done)
    assert "my token is ********" in everything and token not in everything
    committed_db.rollback()
    row = committed_db.get(Execution, done["id"])
    assert token not in json.dumps([row.parameters, row.context, row.result, row.error], default=str)
    # The execution has ended: its token is refused, and purged by the next mint.
    refused = requests.get(f"{api_server}/api/v1/keys/kvpack:plain", headers={"X-Auth-Token": token}, timeout=10)
    assert refused.status_code == 401 and refused.json()["code"] == 401
    committed_db.rollback()
    assert committed_db.scalar(select(RunToken).where(RunToken.execution_id == done["id"])) is not None
    next_run = wait_until_done(admin, execute(admin, {"mode": "hold", "other": "0"}), 60)
    assert next_run["status"] == "succeeded", next_run
    committed_db.rollback()
    assert committed_db.scalar(select(RunToken).where(RunToken.execution_id == done["id"])) is None


def test_decrypting_needs_keys_decrypt_except_for_ones_own_keys(operator, kv_pack, committed_db):
    done = wait_until_done(operator, execute(operator, {"mode": "no_decrypt"}), 60)

    assert done["status"] == "succeeded", done
    result = done["result"]["result"]
    assert "answered 403" in result["decrypt"] and "keys:decrypt" in result["decrypt"]
    assert result["own"] == "own-value"
    [stored] = keys_named(committed_db, "kvpack:op_secret")
    assert stored.secret and stored.value is None


def test_another_action_cannot_find_a_running_actions_token(operator, kv_pack, committed_db):
    holder = execute(operator, {"mode": "hold", "other": "8"})
    wait_until_status(operator, holder, "running", 30)
    wait_for(lambda: committed_db.rollback() or committed_db.scalar(
        select(RunToken).where(RunToken.execution_id == holder)), 15)

    hunter = wait_until_done(operator, execute(operator, {"cmd": HUNT}, "kvpack.shell"), 60)
    held = wait_until_done(operator, holder, 60)

    assert held["status"] == "succeeded", held
    token = held["result"]["result"]["token_reversed"][::-1]
    assert len(token) >= 40
    found = shown(operator, hunter)
    assert hunter["status"] == "succeeded", hunter
    assert "Permission denied" in found  # it tried another uid's /proc, and the kernel said no
    assert token not in found


def test_a_sensor_poll_keeps_its_cursor_in_the_keys_through_the_api(
        app, ship_pack, committed_db, api_server, monkeypatch):
    from tasks.sensors import poll_sensor

    ship_pack("kvsense", {"pack.yaml": "---\nname: kvsense\nversion: 1.0.0\n",
                          "sensors/cursor.yaml": SENSOR_YAML, "sensors/cursor.py": SENSOR})
    monkeypatch.setitem(app.config, "PATCHBAY_API_URL", api_server)
    sensor_id = committed_db.scalar(select(Sensor.id).where(Sensor.ref == "kvsense.Cursor"))

    for _ in range(2):
        with app.app_context():
            assert poll_sensor(sensor_id)["error"] is None

    [cursor] = keys_named(committed_db, "kvsense.Cursor:n")
    assert (cursor.scope, cursor.value) == ("system", "2")
    [refusal] = keys_named(committed_db, "kvsense.Cursor:refused")
    assert "answered 403" in refusal.value
    assert committed_db.scalar(select(RunToken).where(RunToken.sensor_ref == "kvsense.Cursor")) is None
