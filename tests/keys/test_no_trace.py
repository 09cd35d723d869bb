"""A planted secret leaves no trace: stored as a secret key, decrypted into a rule's action
parameters, given as a manual execution's secret parameter and kept as a pack config secret,
then echoed by real runs on the worker — and found nowhere but in Vault.

Searched (as given, JSON-escaped, URL-quoted, hex and base64 at every alignment): every GET
answer a caller without keys:decrypt can reach (the OpenAPI document's routes, lists and
details), every row of every table, every Redis key and every command Redis ran meanwhile
(broker messages, results, events, log lines), the worker's log, and Flower's pages and API.
Asking for the value with keys:decrypt does find it: the search can fail.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
import requests
from sqlalchemy import select

from tests.factories import ApiClient
from tests.keys.traces import (
    RedisMonitor,
    base64_runs,
    database_rows,
    found_in,
    redis_dump,
    text_columns,
    trace_forms,
)
from tests.worker import FLOWER_AUTH, wait_for, wait_until_done

PLANTED = f"plant-{uuid.uuid4().hex}"
FORMS = trace_forms(PLANTED)
KEY = f"plant_{uuid.uuid4().hex[:10]}"
PACK = "nt"
CONFIG_PACK = "ntcfg"  # created through the API, with a config schema


def test_the_search_finds_every_form():
    """The forms searched for are the ones a leak would take."""
    message = json.dumps({"body": base64.b64encode(json.dumps({"kwargs": {"t": PLANTED}}).encode()).decode()})
    assert found_in(message, base64_runs(PLANTED.encode()))
    assert found_in(json.dumps({"text": json.dumps({"t": PLANTED})}), FORMS)
    assert found_in(PLANTED.encode().hex(), FORMS)
    assert not found_in(f"{PLANTED[:-1]}", FORMS)


@pytest.fixture
def viewer(app, committed_db) -> ApiClient:
    """A caller holding every permission but keys:decrypt."""
    from app.models import Identity
    from app.security.permissions import PERMISSIONS
    from app.security.tokens import issue_tokens
    from app.services.rbac import assign_role, create_role

    role = create_role("all-but-decrypt", "", [{"permission": p} for p in PERMISSIONS if p != "keys:decrypt"])
    identity = Identity(name="no-decrypt", kind="user", enabled=True)
    committed_db.add(identity)
    committed_db.flush()
    assign_role(identity, role)
    committed_db.commit()
    with app.test_request_context():
        token = issue_tokens(identity.id)["access_token"]
    return ApiClient(app.test_client(), {"Authorization": f"Bearer {token}"})


@pytest.fixture
def monitor(app):
    recording = RedisMonitor(app.config["REDIS_URL"]).start()
    yield recording
    recording.stop()


def flower_seen(flower: str, execution_id: int) -> dict | None:
    tasks = requests.get(f"{flower}/api/tasks", auth=FLOWER_AUTH, timeout=5).json()
    found = [task for task in tasks.values()
             if str(task.get("args", "")).startswith(f"execution={execution_id} ") and task.get("state") == "SUCCESS"]
    return found[0] if found else None


def run_everything(api: ApiClient, make_action, flower: str) -> dict[str, int]:
    """Plant the secret three ways and run what uses it; returns the execution ids."""
    # Flower sees only tasks whose events reach it once its receiver has subscribed.
    noop = make_action(f"{PACK}.noop", "noop")

    def flower_ready():
        execution_id = api.post(f"/api/v1/actions/{noop}/execute", json={"parameters": {}}).json["id"]
        wait_until_done(api, execution_id)
        for _ in range(10):
            if _quietly(flower_seen, flower, execution_id):
                return True
            time.sleep(0.3)
        return None

    wait_for(flower_ready, 45, every=0)

    assert api.post("/api/v1/keys", json={"name": KEY, "value": PLANTED, "secret": True}).status_code == 201
    pack = api.post("/api/v1/packs", json={
        "name": CONFIG_PACK, "config_schema": {"api_token": {"type": "string", "secret": True}},
        "config": {"api_token": PLANTED}})
    assert pack.status_code == 201, pack.json
    make_action(f"{PACK}.echo", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    make_action(f"{PACK}.manual", "local-shell-cmd", parameters={
        "token": {"type": "string", "secret": True}, "cmd": {"default": "echo manual={{ token }}"}})
    make_action(f"{CONFIG_PACK}.config", "local-shell-cmd",
                parameters={"cmd": {"default": "echo config={{ config.api_token }}"}})
    trigger = api.post("/api/v1/triggers", json={"pack": PACK, "name": "ping", "payload_schema": {
        "type": "object", "properties": {"n": {"type": "string"}}}})
    assert trigger.status_code == 201, trigger.json
    rule = api.post("/api/v1/rules", json={
        "pack": PACK, "name": "echo_planted", "trigger": f"{PACK}.ping", "action": f"{PACK}.echo",
        "action_parameters": {"cmd": f"echo rule={{{{ st2kv.system.{KEY} | decrypt_kv }}}}"}})
    assert rule.status_code == 201, rule.json

    event = api.post("/api/v1/events", json={"trigger": f"{PACK}.ping", "payload": {"n": "1"}})
    assert event.status_code == 202, event.json
    manual = api.post(f"/api/v1/actions/{PACK}.manual/execute", json={"parameters": {"token": PLANTED}})
    assert manual.status_code == 201, manual.json
    config = api.post(f"/api/v1/actions/{CONFIG_PACK}.config/execute", json={"parameters": {}})
    assert config.status_code == 201, config.json

    def enforced():
        body = api.get(f"/api/v1/events/{event.json['id']}").json
        if body["status"] != "processed" or not body.get("enforcements"):
            return None
        return api.get(f"/api/v1/enforcements/{body['enforcements'][0]['id']}").json.get("execution")

    ids = {"rule": wait_for(enforced)["id"], "manual": manual.json["id"], "config": config.json["id"]}
    for name, execution_id in ids.items():
        done = wait_until_done(api, execution_id)
        assert done["status"] == "succeeded", done
        # Echoed, the value shows as the mask.
        assert done["result"]["stdout"].rstrip("\n") == f"{name}=********", done
        assert done["parameters"]["cmd"] == f"echo {name}=********", done
        logs = api.get(f"/api/v1/executions/{execution_id}/logs").json
        assert [line["line"] for line in logs] == [f"{name}=********"]
    for execution_id in ids.values():
        wait_for(lambda execution_id=execution_id: flower_seen(flower, execution_id), 15)
    return ids


def _quietly(fn, *args):
    try:
        return fn(*args)
    except requests.RequestException:
        return None


def every_get_answer(viewer: ApiClient) -> dict[str, str]:
    """Each GET route of the OpenAPI document: those without path parameters, then every
    detail route for each object the lists name."""
    spec = viewer.get("/api/v1/openapi.json").json
    answers: dict[str, str] = {}
    templated = []
    for path, operations in spec["paths"].items():
        if "get" not in operations:
            continue
        if "{" in path:
            templated.append(path)
            continue
        response = viewer.get(path, query_string={"page_size": 100})
        assert response.status_code < 500, (path, response.status_code)
        answers[path] = response.get_data(as_text=True)
    for path in templated:
        listing, _, rest = path.partition("/{")
        parameter = rest.split("}")[0]
        field = "id" if parameter.endswith("id") else parameter
        items = json.loads(answers.get(listing) or "[]")
        values = [item[field] for item in items if isinstance(item, dict) and field in item]
        for value in values:
            url = path.replace(f"{{{parameter}}}", str(value))
            response = viewer.get(url, query_string={"page_size": 100})
            assert response.status_code < 500, (url, response.status_code)
            answers[url] = response.get_data(as_text=True)
    return answers


def test_a_planted_secret_leaves_no_trace(app, worker_api, viewer, make_action, celery_worker, flower, monitor,
                                          committed_db, tmp_path):
    from app.db import db
    from app.extensions import redis_client
    from app.models import AuditEntry

    ids = run_everything(worker_api, make_action, flower)

    # The control: asked with keys:decrypt, the value is there — and the search finds it.
    control = worker_api.get(f"/api/v1/keys/{KEY}", query_string={"decrypt": "true"})
    assert found_in(control.get_data(as_text=True), FORMS) == [PLANTED]
    refused = viewer.get(f"/api/v1/keys/{KEY}", query_string={"decrypt": "true"})
    assert refused.status_code == 403 and not found_in(refused.get_data(as_text=True), FORMS)
    # The same for what Redis ran: a value written there is seen (then removed again).
    with app.app_context():
        redis_client().set("control-plant", PLANTED)
        redis_client().delete("control-plant")
    monitored = monitor.stop()
    assert [found_in(command, FORMS) for command in monitored if "control-plant" in command] == [[PLANTED], []]
    monitored = [command for command in monitored if "control-plant" not in command]

    # The API, as a caller without keys:decrypt.
    answers = every_get_answer(viewer)
    for path in (f"/api/v1/keys/{KEY}", f"/api/v1/packs/{CONFIG_PACK}/config", "/api/v1/audit", "/api/v1/enforcements",
                 *(f"/api/v1/executions/{i}" for i in ids.values()),
                 *(f"/api/v1/executions/{i}/logs" for i in ids.values())):
        assert path in answers, sorted(answers)
    assert "********" in answers[f"/api/v1/packs/{CONFIG_PACK}/config"]
    leaks = {path: found_in(body, FORMS) for path, body in answers.items()}
    assert not {path: forms for path, forms in leaks.items() if forms}

    # Every row of every table, the audit log among them.
    with db.engine.connect() as connection:
        columns = text_columns(connection)
        rows = database_rows(connection)
    assert {("audit_log", "details"), ("executions", "result"), ("keys", "value")} <= set(columns)
    assert any(KEY in row for row in rows["keys"])  # the rows are there; their values are not
    dumped = {table: [row for row in table_rows if found_in(row, FORMS)] for table, table_rows in rows.items()}
    assert not {table: found for table, found in dumped.items() if found}
    # The decrypts of this key: one, by the admin's control read (earlier tests' entries may
    # still be in the audit log, which tests outside committed_db write to as well).
    decrypts = committed_db.scalars(select(AuditEntry).where(AuditEntry.action == "keys:decrypt",
                                                             AuditEntry.resource_ref == KEY)).all()
    assert len(decrypts) == 1
    committed_db.rollback()

    # Redis: every key now, and every command it ran while the executions went through.
    with app.app_context():
        dump = redis_dump(redis_client())
    assert dump, "the test's Redis database holds nothing"
    assert not {key: found_in(value, FORMS) for key, value in dump.items() if found_in(value, FORMS)}
    assert not [key for key in dump if found_in(key, FORMS)]
    assert any("run_execution" in command for command in monitored)  # the broker messages passed by
    assert not [command for command in monitored if found_in(command, FORMS)]

    # The worker's log.
    log = celery_worker.log()
    assert f"execution {ids['manual']}" in log or f"execution={ids['manual']}" in log
    assert not found_in(log, FORMS)

    # Flower: its API and the pages a person clicks.
    pages = ["/api/tasks", "/api/workers", "/tasks", "/workers", "/broker", "/api/queues/length"]
    tasks = requests.get(f"{flower}/api/tasks", auth=FLOWER_AUTH, timeout=5).json()
    for task_id in tasks:
        pages += [f"/task/{task_id}", f"/api/task/info/{task_id}", f"/api/task/result/{task_id}"]
    shown = {}
    for page in pages:
        response = requests.get(f"{flower}{page}", auth=FLOWER_AUTH, timeout=10)
        assert response.status_code == 200, (page, response.status_code)
        shown[page] = response.text
    assert any(f"execution={ids['rule']} " in body for body in shown.values())
    assert not {page: found_in(body, FORMS) for page, body in shown.items() if found_in(body, FORMS)}
    # And Flower's own log (the flower fixture writes it to this test's tmp_path).
    assert not found_in((tmp_path / "flower.log").read_bytes(), FORMS)
