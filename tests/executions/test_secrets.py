"""Secret parameters: never in the row, the broker message, the logs or any API answer."""

from __future__ import annotations

import base64
import json
import os
import socket

from sqlalchemy import text

from app.services import queue, vault
from tests.executions.conftest import wait_for, wait_until_done

SECRET = "hunter2-very-secret"


def test_secret_parameter_is_masked_everywhere_and_used_by_the_action(app, worker_api, make_action, committed_db,
                                                                      celery_worker):
    ref = make_action("sec.login", "local-shell-cmd", parameters={
        "password": {"type": "string", "secret": True, "required": True},
        "cmd": {"default": "echo the password is {{ password }}", "immutable": True},
    })
    worker = f"pytest-{os.getpid()}@{socket.gethostname()}"
    with app.app_context():
        control = queue.celery_app().control
        control.cancel_consumer(queue.ACTIONS_QUEUE, destination=[worker], reply=True)
        try:
            response = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"password": SECRET}})
            assert response.status_code == 201
            created = response.get_json()
            messages = wait_for(lambda: _queued_messages(app))
            stored = vault.read_secret(vault.execution_secret_path(created["id"]))
        finally:
            control.add_consumer(queue.ACTIONS_QUEUE, destination=[worker], reply=True)

    # The broker carries the id and a legible summary for Flower, never the value.
    (message,) = [m for m in messages if m["headers"]["id"] == created_task_id(committed_db, created["id"])]
    assert SECRET not in json.dumps(message)
    assert json.loads(base64.b64decode(message["body"]))[0] == [created["id"]]
    assert message["headers"]["argsrepr"] == f"execution={created['id']} action=sec.login"
    assert message["headers"]["task"] == "patchbay.run_execution"
    # While queued, the value waits in Vault.
    assert stored == {"password": SECRET}

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["parameters"]["password"] == "********"
    assert done["parameters"]["cmd"] == "echo the password is ********"
    assert done["result"]["stdout"].strip() == "the password is ********"
    lines = worker_api.get(f"/api/v1/executions/{created['id']}/logs").get_json()
    assert [item["line"] for item in lines] == ["the password is ********"]
    listing = worker_api.get("/api/v1/executions").get_data(as_text=True)
    for answer in (json.dumps(created), json.dumps(done), json.dumps(lines), listing):
        assert SECRET not in answer
    for table in ("executions", "execution_log_lines"):
        assert committed_db.execute(text(f"SELECT count(*) FROM {table} t WHERE t::text LIKE :s"),
                                    {"s": f"%{SECRET}%"}).scalar() == 0
    with app.app_context():
        assert vault.read_secret(vault.execution_secret_path(created["id"])) is None
    assert SECRET not in celery_worker.log()


def created_task_id(session, execution_id: int) -> str:
    session.rollback()
    return session.execute(text("SELECT task_id FROM executions WHERE id = :i"), {"i": execution_id}).scalar()


def _queued_messages(app) -> list[dict]:
    from app.extensions import redis_client

    with app.app_context():
        raw = redis_client().lrange(queue.ACTIONS_QUEUE, 0, -1)
    return [json.loads(item) for item in raw]


def test_rerun_asks_for_secrets_again(app, worker_api, make_action):
    ref = make_action("sec.again", "noop", parameters={
        "token": {"type": "string", "secret": True, "required": True},
        "name": {"type": "string"},
    })
    created = worker_api.post(f"/api/v1/actions/{ref}/execute",
                              json={"parameters": {"token": SECRET, "name": "a"}}).get_json()
    wait_until_done(worker_api, created["id"])

    refused = worker_api.post(f"/api/v1/executions/{created['id']}/rerun", json={})
    assert refused.status_code == 422
    assert "token" in refused.get_json()["errors"]["parameters"]

    rerun = worker_api.post(f"/api/v1/executions/{created['id']}/rerun",
                            json={"parameters": {"token": "another-secret"}})
    assert rerun.status_code == 201
    body = rerun.get_json()
    assert body["parameters"] == {"token": "********", "name": "a"}
    assert body["rerun_of"] == created["id"]
    assert wait_until_done(worker_api, body["id"])["status"] == "succeeded"


def test_a_refused_secret_value_is_not_quoted_in_the_422(api, create_action):
    action = create_action("sec.pin", runner_type="noop", parameters={
        "pin": {"type": "string", "secret": True, "pattern": "^[0-9]+$"},
        "codes": {"type": "array", "items": {"type": "integer"}, "secret": True},
    })

    response = api.post(f"/api/v1/actions/{action.ref}/execute",
                        json={"parameters": {"pin": "not-digits-" + SECRET, "codes": [1, SECRET]}})

    assert response.status_code == 422
    body = response.get_json()
    assert set(body["errors"]["parameters"]) == {"pin", "codes"}
    assert SECRET not in response.get_data(as_text=True)


def test_a_multi_line_secret_is_masked_in_every_log_line(worker_api, make_action, celery_worker):
    key = "-----BEGIN TEST KEY-----\nfirst-" + SECRET + "\nsecond-line-of-key\n-----END TEST KEY-----"
    ref = make_action("sec.pem", "local-shell-cmd", parameters={
        # A PEM key starts with "-----": printf takes it as data after its format.
        "key": {"type": "string", "secret": True, "required": True, "allow_options": True},
        "cmd": {"default": "printf '%s\\n' {{ key }}; printf '%s\\n' {{ key }} >&2", "immutable": True},
    })

    created = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"key": key}}).get_json()

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded", done["error"]
    lines = worker_api.get(f"/api/v1/executions/{created['id']}/logs").get_json()
    assert len(lines) == 8
    assert {item["line"] for item in lines} == {"********"}
    for line in key.split("\n"):
        assert line not in json.dumps(done)
    assert "second-line-of-key" not in celery_worker.log()


def test_a_secret_of_the_pack_config_rendered_into_a_parameter_is_masked(worker_api, make_action, committed_db,
                                                                         celery_worker):
    from app.models import Pack

    ref = make_action("sec.cfg", "local-shell-cmd", parameters={
        "cmd": {"default": "echo key={{ config.api_key }} region={{ config.region }}", "immutable": True},
    })
    pack = committed_db.query(Pack).filter_by(name="sec").one()
    pack.config_schema = {"api_key": {"type": "string", "secret": True}, "region": {"type": "string"}}
    pack.config = {"api_key": SECRET, "region": "eu-west"}
    committed_db.commit()

    created = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {}}).get_json()

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["parameters"]["cmd"] == "echo key=******** region=eu-west"
    assert done["result"]["stdout"] == "key=******** region=eu-west"
    lines = worker_api.get(f"/api/v1/executions/{created['id']}/logs").get_json()
    assert [item["line"] for item in lines] == ["key=******** region=eu-west"]
    assert SECRET not in worker_api.get("/api/v1/executions").get_data(as_text=True)


def test_a_secret_in_a_url_is_masked_in_its_percent_encoded_form_too(worker_api, make_action):
    ref = make_action("sec.url", "http-request", parameters={
        "api_key": {"type": "string", "secret": True, "required": True},
        "url": {"default": "http://127.0.0.1:1/items", "immutable": True},
        "params": {"default": {"key": "{{ api_key }}"}, "immutable": True},
        "allowed_networks": {"default": ["127.0.0.1"], "immutable": True},  # reaches port 1, which refuses
    })
    value = "p@ss/w rd+" + SECRET

    created = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"api_key": value}}).get_json()

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "failed"
    assert "127.0.0.1" in done["error"] and "********" in done["error"]
    assert SECRET not in json.dumps(done)


def test_a_retry_runs_with_the_secret_not_with_its_mask(worker_api, make_action, committed_db, action_tmp):
    from sqlalchemy import select

    from app.models import Execution

    marker, out = action_tmp / "failed-once", action_tmp / "seen"
    ref = make_action("sec.retry", "local-shell-cmd", retry={"retries": 1, "on": ["failed"]}, parameters={
        "password": {"type": "string", "secret": True, "required": True},
        "cmd": {"default": f"if [ -f {marker} ]; then printf %s {{{{ password }}}} > {out}; "
                           f"else touch {marker}; exit 1; fi"},
    })

    created = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"password": SECRET}}).get_json()

    assert wait_until_done(worker_api, created["id"])["status"] == "failed"
    retry_id = wait_for(lambda: committed_db.scalar(select(Execution.id).where(Execution.rerun_of == created["id"])))
    committed_db.rollback()
    retry = wait_until_done(worker_api, retry_id)
    assert retry["status"] == "succeeded", retry["error"]
    assert out.read_text() == SECRET
    assert retry["parameters"]["cmd"].endswith("> " + str(out) + "; else touch " + str(marker) + "; exit 1; fi")
    assert SECRET not in json.dumps(retry)
