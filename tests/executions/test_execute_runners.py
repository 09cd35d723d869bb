"""Each runner through POST /actions/<ref>/execute and a real worker."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.executions.conftest import wait_until_done


def test_noop_execution_succeeds(worker_api, make_action, celery_worker):
    ref = make_action("demo.nothing", "noop")

    response = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {}},
                               headers={"X-Request-ID": "req-noop-123"})

    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["status"] == "requested"
    assert created["action"] == "demo.nothing"
    assert created["user"] == "exec-admin"
    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded"
    assert done["result"] == {}
    assert done["worker_host"].startswith("pytest-")
    assert done["started_at"] and done["finished_at"]
    # The request id travels with the execution into the worker's log lines.
    assert done["request_id"] == "req-noop-123"
    assert f"[req-noop-123] execution {created['id']} ended succeeded" in celery_worker.log()


def logs_of(api, execution_id: int, **query) -> list[dict]:
    response = api.get(f"/api/v1/executions/{execution_id}/logs", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_local_shell_cmd_streams_output_and_result(worker_api, make_action):
    ref = make_action("demo.shell", "local-shell-cmd",
                      parameters={"who": {"type": "string", "required": True}, "cmd": {"type": "string"}})

    created = worker_api.post(f"/api/v1/actions/{ref}/execute", json={
        "parameters": {"cmd": "echo hello; echo oops >&2", "who": "x"}}).get_json()

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded"
    assert done["result"]["stdout"].strip() == "hello"
    assert done["result"]["return_code"] == 0
    lines = logs_of(worker_api, created["id"])
    assert {(item["stream"], item["line"]) for item in lines} >= {("stdout", "hello"), ("stderr", "oops")}
    assert [item["seq"] for item in lines] == list(range(1, len(lines) + 1))
    assert logs_of(worker_api, created["id"], stream="stderr")[0]["line"] == "oops"


def test_failing_command_ends_failed_with_its_exit_code(worker_api, make_action):
    ref = make_action("demo.fails", "local-shell-cmd", parameters={"cmd": {"type": "string"}})

    created = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"cmd": "exit 3"}}).get_json()

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "failed"
    assert done["result"]["return_code"] == 3
    assert "3" in done["error"]


def test_local_shell_script_gets_its_parameters(worker_api, make_action, tmp_path):
    (tmp_path / "actions").mkdir()
    script = tmp_path / "actions" / "greet.sh"
    script.write_text('#!/bin/sh\necho "args: $*"\necho "env: $PATCHBAY_PARAM_NAME"\n')
    script.chmod(0o755)
    ref = make_action("scripts.greet", "local-shell-script", pack_path=str(tmp_path), entry_point="greet.sh",
                      parameters={"name": {"type": "string", "default": "world"}})

    created = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"name": "ada"}}).get_json()

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded", (done["error"], done["result"])
    assert "--name=ada" in done["result"]["stdout"]
    assert "env: ada" in done["result"]["stdout"]


def test_python_script_returns_its_result(worker_api, make_action, tmp_path):
    (tmp_path / "actions").mkdir()
    (tmp_path / "actions" / "add.py").write_text(
        "from st2common.runners.base_action import Action\n\n"
        "class Add(Action):\n"
        "    def run(self, a, b):\n"
        "        print('adding', a, b)\n"
        "        return {'sum': a + b}\n"
    )
    ref = make_action("py.add", "python-script", pack_path=str(tmp_path), entry_point="add.py",
                      parameters={"a": {"type": "integer", "required": True}, "b": {"type": "integer", "default": 2}})

    created = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"a": 40}}).get_json()

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded", (done["error"], done["result"])
    assert done["result"]["result"] == {"sum": 42}
    assert done["parameters"] == {"a": 40, "b": 2}
    assert any(item["line"] == "adding 40 2" for item in logs_of(worker_api, created["id"]))


def test_http_request_calls_a_local_server(worker_api, make_action, http_server):
    ref = make_action("web.call", "http-request", parameters={
        "url": {}, "method": {}, "body": {},
        "allowed_networks": {"default": ["127.0.0.1"], "immutable": True},  # the test server's loopback
    })

    created = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {
        "url": f"{http_server.url}/things?x=1", "method": "POST", "body": {"name": "gizmo"}}}).get_json()

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded", (done["error"], done["result"])
    assert http_server.requests == [("POST", "/things?x=1", {"name": "gizmo"})]
    assert done["result"]["status_code"] == 201
    assert done["result"]["body"] == {"created": "gizmo"}


def test_parameters_render_templates_from_other_parameters(worker_api, make_action):
    ref = make_action("demo.greet", "local-shell-cmd", parameters={
        "name": {"type": "string", "required": True},
        "cmd": {"default": "echo hello {{ name }}", "immutable": True},
    })

    created = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"name": "it's me"}}).get_json()

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["stdout"].strip() == "hello it's me"
    assert done["parameters"]["cmd"] == "echo hello 'it'\"'\"'s me'"


def test_rerun_repeats_with_overrides(worker_api, make_action, committed_db):
    from app.models import Action

    ref = make_action("demo.echo", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    first = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"cmd": "echo one"}}).get_json()
    wait_until_done(worker_api, first["id"])

    same = worker_api.post(f"/api/v1/executions/{first['id']}/rerun", json={})
    changed = worker_api.post(f"/api/v1/executions/{first['id']}/rerun", json={"parameters": {"cmd": "echo two"}})

    assert same.status_code == 201 and changed.status_code == 201
    assert same.get_json()["rerun_of"] == first["id"]
    assert wait_until_done(worker_api, same.get_json()["id"])["result"]["stdout"].strip() == "one"
    assert wait_until_done(worker_api, changed.get_json()["id"])["result"]["stdout"].strip() == "two"
    bad = worker_api.post(f"/api/v1/executions/{first['id']}/rerun", json={"parameters": {"nope": 1}})
    assert bad.status_code == 422
    assert "nope" in bad.get_json()["errors"]["parameters"]
    committed_db.query(Action).filter_by(ref=ref).update({"enabled": False})
    committed_db.commit()
    assert worker_api.post(f"/api/v1/executions/{first['id']}/rerun", json={}).status_code == 409
    assert worker_api.post("/api/v1/executions/424242/rerun", json={}).status_code == 404


def test_rerun_renders_defaults_afresh_and_keeps_literal_values_literal(app, worker_api, make_action, committed_db):
    from app.services import executions, unit_of_work

    ref = make_action("demo.hello", "local-shell-cmd", parameters={
        "name": {"type": "string", "required": True},
        "cmd": {"default": "echo hello {{ name }}"},
    })
    first = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"name": "ann"}}).get_json()
    assert wait_until_done(worker_api, first["id"])["result"]["stdout"] == "hello ann"

    renamed = worker_api.post(f"/api/v1/executions/{first['id']}/rerun", json={"parameters": {"name": "bob"}})

    assert renamed.status_code == 201
    assert wait_until_done(worker_api, renamed.get_json()["id"])["result"]["stdout"] == "hello bob"

    # As a rule passes them: values rendered from the event already, kept literal.
    with app.test_request_context():
        from_rule = executions.create_execution(executions.action_for_execute(ref), {"name": "{{ 6 * 7 }}"},
                                                rule_ref="demo.on_event")
        unit_of_work.commit()  # its message goes after the commit
        rule_id = from_rule.id
    assert wait_until_done(worker_api, rule_id)["result"]["stdout"] == "hello {{ 6 * 7 }}"
    rerun = worker_api.post(f"/api/v1/executions/{rule_id}/rerun", json={}).get_json()
    assert wait_until_done(worker_api, rerun["id"])["result"]["stdout"] == "hello {{ 6 * 7 }}"


def test_values_given_to_execute_are_data_not_templates(worker_api, make_action, committed_db):
    from app.models import Pack

    ref = make_action("cfg.hello", "local-shell-cmd", parameters={
        "name": {"type": "string", "required": True},
        "cmd": {"default": "echo hello {{ name }}", "immutable": True},
    })
    pack = committed_db.scalar(select(Pack).where(Pack.name == "cfg"))
    pack.config = {"api_key": "s3cr3t-config-value"}
    committed_db.commit()

    probe = worker_api.post(f"/api/v1/actions/{ref}/execute",
                            json={"parameters": {"name": "{{ config.api_key | reverse }}"}}).get_json()
    done = wait_until_done(worker_api, probe["id"])
    assert done["status"] == "succeeded"
    assert done["result"]["stdout"] == "hello {{ config.api_key | reverse }}"
    assert "eulav-gifnoc" not in json.dumps(done)
