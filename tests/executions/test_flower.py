"""Flower, as the Procfile runs it: behind basic auth, showing executions by id and action only."""

from __future__ import annotations

import time

import requests

from tests.executions.conftest import wait_for, wait_until_done
from tests.worker import FLOWER_AUTH as AUTH


def test_flower_needs_credentials_and_shows_execution_and_action_only(flower, worker_api, make_action):
    ref = make_action("flw.secretive", "noop", parameters={"token": {"type": "string", "secret": True}})

    assert requests.get(f"{flower}/api/tasks", timeout=5).status_code == 401
    assert requests.get(f"{flower}/", timeout=5).status_code == 401

    # Flower knows only tasks whose events reach it after its event receiver has subscribed,
    # which can lag its first HTTP answer: run executions until one shows up.
    def one_shown():
        created = worker_api.post(f"/api/v1/actions/{ref}/execute",
                                  json={"parameters": {"token": "top-secret-value"}}).get_json()
        wait_until_done(worker_api, created["id"])
        summary = f"execution={created['id']} action=flw.secretive"
        for _ in range(10):
            tasks = requests.get(f"{flower}/api/tasks", auth=AUTH, timeout=5).json()
            found = [t for t in tasks.values() if t.get("args") == summary]
            if found:
                return created, found[0]
            time.sleep(0.3)
        return None

    created, task = wait_for(one_shown, 45, every=0)
    assert task["name"] == "patchbay.run_execution"
    assert task["kwargs"] == "{}"
    assert "top-secret-value" not in str(task)
    # The task's own page (what a person clicks in the UI) shows the same summary.
    page = requests.get(f"{flower}/task/{task['uuid']}", auth=AUTH, timeout=5)
    assert page.status_code == 200
    assert f"execution={created['id']} action=flw.secretive" in page.text
    assert "top-secret-value" not in page.text


def flower_task(flower: str, execution_id: int, ref: str, final: set[str]) -> dict | None:
    summary = f"execution={execution_id} action={ref}"
    tasks = requests.get(f"{flower}/api/tasks", auth=AUTH, timeout=5).json()
    found = [t for t in tasks.values() if t.get("args") == summary and t.get("state") in final]
    return found[0] if found else None


def test_flower_shows_each_execution_as_it_ended(flower, worker_api, make_action):
    secret = {"token": {"type": "string", "secret": True}}
    fails = make_action("flw.fails", "local-shell-cmd", parameters={"cmd": {"type": "string"}, **secret})
    works = make_action("flw.works", "noop", parameters=secret)

    def execute(ref: str, **parameters) -> int:
        answer = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": parameters})
        assert answer.status_code in (201, 202), answer.get_json()
        return answer.get_json()["id"]

    # Flower's event receiver subscribes after its first HTTP answer: wait until it sees one.
    def seen_success():
        execution_id = execute(works, token="top-secret-value")
        assert wait_until_done(worker_api, execution_id)["status"] == "succeeded"
        for _ in range(10):
            task = flower_task(flower, execution_id, works, {"SUCCESS"})
            if task:
                return task
            time.sleep(0.3)
        return None

    succeeded = wait_for(seen_success, 45, every=0)
    failed_id = execute(fails, cmd="echo visible-parameter; exit 3", token="top-secret-value")
    assert wait_until_done(worker_api, failed_id)["status"] == "failed"
    canceled_id = execute(fails, cmd="sleep 30", token="top-secret-value")
    wait_for(lambda: worker_api.get(f"/api/v1/executions/{canceled_id}").get_json()["status"] == "running")
    assert worker_api.post(f"/api/v1/executions/{canceled_id}/cancel").status_code == 200
    assert wait_until_done(worker_api, canceled_id)["status"] == "canceled"

    failed = wait_for(lambda: flower_task(flower, failed_id, fails, {"FAILURE"}), 15)
    canceled = wait_for(lambda: flower_task(flower, canceled_id, fails, {"REVOKED"}), 15)
    assert succeeded["state"] == "SUCCESS"
    assert "ExecutionFailed" in failed["exception"]
    assert f"({fails}) failed: The process exited with code 3." in failed["exception"]
    # Neither retried nor requeued: one task, still FAILURE a moment later.
    time.sleep(1)
    tasks = requests.get(f"{flower}/api/tasks", auth=AUTH, timeout=5).json()
    runs = [t for t in tasks.values() if t.get("args") == f"execution={failed_id} action={fails}"]
    assert [(t["uuid"], t["state"]) for t in runs] == [(failed["uuid"], "FAILURE")]
    for task in (succeeded, failed, canceled):
        shown = str(task) + requests.get(f"{flower}/task/{task['uuid']}", auth=AUTH, timeout=5).text
        assert "top-secret-value" not in shown
        assert "visible-parameter" not in shown and "sleep 30" not in shown

