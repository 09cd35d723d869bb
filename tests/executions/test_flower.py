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
