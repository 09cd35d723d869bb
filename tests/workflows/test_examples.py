"""The example pack's deployment workflow, as a user meets it: register the pack, run it,
watch its tasks appear, answer its approval, see its output."""

from __future__ import annotations

import shutil

import pytest

from app.config import ROOT
from tests.executions.conftest import wait_for, wait_until_done, wait_until_status
from tests.executions.test_lifecycle import execute
from tests.worker import readable_by_all


@pytest.fixture
def examples(app, committed_db, worker_packs_path, core_pack):
    from app.services.pack_loader import register_pack

    shutil.copytree(ROOT / "packs" / "examples", worker_packs_path / "examples", dirs_exist_ok=True)
    readable_by_all(worker_packs_path / "examples")
    with app.app_context():
        register_pack("examples")
        committed_db.commit()


def test_deploy_fans_out_joins_asks_and_finishes_with_its_output(worker_api, examples):
    created = execute(worker_api, "examples.deploy", version="2.4.1", hosts=["web-1", "web-2", "web-3"])

    def asking():
        tasks = worker_api.get(f"/api/v1/executions/{created['id']}/children").get_json()
        return tasks if any(t["task_name"] == "approve" for t in tasks) else None

    tasks = wait_for(asking, timeout=60)
    checks = [t for t in tasks if t["task_name"] == "check"]
    assert sorted(t["item_index"] for t in checks) == [0, 1, 2]
    assert all(t["status"] == "succeeded" for t in checks)
    approve = next(t for t in tasks if t["task_name"] == "approve")
    wait_until_status(worker_api, approve["id"], "pending")

    pending = worker_api.get("/api/v1/inquiries").get_json()
    (inquiry,) = [i for i in pending if i["execution"] == approve["id"]]
    assert inquiry["route"] == "deployments"
    answer = worker_api.post(f"/api/v1/inquiries/{inquiry['id']}/respond",
                             json={"response": {"approved": True, "note": "ship it"}})
    assert answer.status_code == 200, answer.get_json()

    done = wait_until_done(worker_api, created["id"], timeout=90)
    assert done["status"] == "succeeded", done
    assert done["result"]["output"] == {
        "checked": [f"web-{n} is ready for 2.4.1" for n in (1, 2, 3)],
        "rolled": [f"rolled out 2.4.1 to web-{n}" for n in (1, 2, 3)],
        "note": "ship it",
    }
    names = [t["task_name"] for t in worker_api.get(f"/api/v1/executions/{created['id']}/children").get_json()]
    assert names.count("check") == 3 and names.count("rollout") == 3
    assert names[-1] == "report"
