"""Executions that wait, with a real worker: a parent waiting on its children holds no worker
slot, survives its worker's death and the sweeper, is resumed by its children's ends (or by
the sweeper when a resume message is lost), and a cancel reaches every descendant.

The parents run the ``test-tree`` runner (tests/tree_runner.py, loaded by the test workers),
which waits on children as a workflow does; ``core.ask`` waits on a person.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from app.models import Execution, Inquiry
from tests.executions.conftest import wait_for, wait_until_done, wait_until_status
from tests.executions.test_lifecycle import execute, gone, kill_leftovers, logged
from tests.executions.test_workers import beat, only_on, second_worker  # noqa: F401 - fixtures
from tests.tree_runner import RUNNER_TYPE

SLEEP = "sleep 300 & echo child=$!; wait"


@pytest.fixture
def tree(make_action, core_pack):
    """The ref of a ``test-tree`` action: ``children`` = [{action, parameters, name}]."""
    return make_action("tree.parent", RUNNER_TYPE, parameters={"children": {"type": "array", "default": []}})


@pytest.fixture
def shell(make_action):
    return make_action("tree.shell", "local-shell-cmd", parameters={"cmd": {"type": "string"}})


def children_of(api, execution_id: int) -> dict[str, dict]:
    rows = api.get("/api/v1/executions", query_string={"parent": execution_id, "page_size": 100}).get_json()
    return {row["task_name"]: row for row in rows}


def parsed(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def answer(app, execution_id: int, response: dict, *, send: bool = True) -> None:
    """Answer the inquiry of ``execution_id`` as a person would (the service the inquiry
    endpoint calls). ``send=False`` commits the answer but loses its resume message."""
    from app.db import db
    from app.services import inquiries, unit_of_work

    with app.test_request_context():
        inquiry = db.session.scalar(select(Inquiry).where(Inquiry.execution_id == execution_id))
        inquiries.respond(inquiry, response, "approver")
        db.session.commit()
        if send:
            unit_of_work.drain()
        else:
            db.session().info.clear()  # the broker "lost" the resume message
        db.session.remove()


def test_a_parent_waits_on_its_children_without_holding_a_worker_slot(worker_api, tree, shell):
    # Two pool processes: were the waiting parent holding one, its two children could not
    # run at the same time.
    created = execute(worker_api, tree, children=[
        {"action": shell, "parameters": {"cmd": "echo start=$(date +%s.%N); sleep 1.5"}, "name": "a"},
        {"action": shell, "parameters": {"cmd": "echo start=$(date +%s.%N); sleep 1.5"}, "name": "b"},
    ])

    waiting = wait_until_status(worker_api, created["id"], "running")
    wait_for(lambda: worker_api.get(f"/api/v1/executions/{created['id']}").get_json()["waiting_on"] == "children")
    done = wait_until_done(worker_api, created["id"], timeout=60)

    assert waiting["worker_host"]
    assert done["status"] == "succeeded", done
    assert done["result"] == {"children": {"a": "succeeded", "b": "succeeded"}, "resumes": done["result"]["resumes"]}
    assert done["waiting_on"] is None
    kids = children_of(worker_api, created["id"])
    assert {kid["parent_id"] for kid in kids.values()} == {created["id"]}
    assert {kid["root_id"] for kid in kids.values()} == {created["id"]}
    a, b = (worker_api.get(f"/api/v1/executions/{kids[name]['id']}").get_json() for name in "ab")
    # The two children overlapped in time, and the parent ended after both.
    assert parsed(a["started_at"]) < parsed(b["finished_at"]) and parsed(b["started_at"]) < parsed(a["finished_at"])
    assert parsed(done["finished_at"]) >= max(parsed(a["finished_at"]), parsed(b["finished_at"]))
    lines = [line["line"] for line in worker_api.get(f"/api/v1/executions/{created['id']}/logs").get_json()]
    assert lines == ["started 2 children", "all 2 children ended"]


def test_a_failed_child_fails_its_parent_after_the_others_end(worker_api, tree, shell):
    created = execute(worker_api, tree, children=[
        {"action": shell, "parameters": {"cmd": "exit 3"}, "name": "bad"},
        {"action": shell, "parameters": {"cmd": "sleep 1"}, "name": "good"},
    ])

    done = wait_until_done(worker_api, created["id"], timeout=60)

    assert done["status"] == "failed"
    assert done["result"]["children"] == {"bad": "failed", "good": "succeeded"}
    assert done["error"] == "A child did not succeed."


def test_core_ask_waits_pending_and_the_answer_becomes_its_result(app, worker_api, core_pack, committed_db):
    created = execute(worker_api, "core.ask", route="ops")
    pending = wait_until_status(worker_api, created["id"], "pending")
    assert pending["waiting_on"] == "inquiry"

    answer(app, created["id"], {"continue": True})

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded"
    assert done["result"]["response"] == {"continue": True}
    assert done["result"]["route"] == "ops"
    inquiry = committed_db.scalar(select(Inquiry).where(Inquiry.execution_id == created["id"]))
    committed_db.refresh(inquiry)
    assert (inquiry.status, inquiry.responder) == ("responded", "approver")


def test_an_answer_of_the_wrong_shape_or_a_second_answer_is_refused(app, worker_api, core_pack):
    from app.errors import Conflict, ValidationError

    created = execute(worker_api, "core.ask")
    wait_until_status(worker_api, created["id"], "pending")
    with pytest.raises(ValidationError) as wrong:
        answer(app, created["id"], {"continue": "maybe"})
    assert "continue" in str(wrong.value.errors["response"])
    answer(app, created["id"], {"continue": False})
    with pytest.raises(Conflict):
        answer(app, created["id"], {"continue": True})
    assert wait_until_done(worker_api, created["id"])["result"]["response"] == {"continue": False}


def test_a_waiting_execution_survives_its_worker_dying_and_the_sweeper_and_resumes(
        app, worker_api, tree, core_pack, celery_worker, second_worker, beat, committed_db):  # noqa: F811
    name, proc = second_worker
    with only_on(app, name, celery_worker):
        created = execute(worker_api, tree, children=[{"action": "core.ask", "name": "approve"}])
        wait_for(lambda: children_of(worker_api, created["id"]).get("approve", {}).get("status") == "pending", 30)
        parent = worker_api.get(f"/api/v1/executions/{created['id']}").get_json()
        assert (parent["status"], parent["waiting_on"], parent["worker_host"]) == ("running", "children", name)

        os.killpg(proc.pid, signal.SIGKILL)  # the worker that ran both is gone
        proc.wait(5)

    # Beat's sweeper runs every second and abandons stale heartbeats after 4 s; a waiting
    # execution has no worker to lose and is left alone. A run whose worker stopped beating
    # (made here, stale from the start) shows the sweeper did run meanwhile.
    stale = stale_run(committed_db)
    assert wait_until_status(worker_api, stale, "abandoned", timeout=30)
    time.sleep(5)  # past the abandon age for the tree too
    parent = worker_api.get(f"/api/v1/executions/{created['id']}").get_json()
    child = children_of(worker_api, created["id"])["approve"]
    assert (parent["status"], parent["waiting_on"]) == ("running", "children")
    assert (child["status"], child["waiting_on"]) == ("pending", "inquiry")

    answer(app, child["id"], {"continue": True})

    done = wait_until_done(worker_api, created["id"], timeout=60)
    assert done["status"] == "succeeded"
    assert done["result"]["children"] == {"approve": "succeeded"}
    assert done["worker_host"] != name  # resumed by the worker that is still alive


def stale_run(session) -> int:
    """A ``running`` core.noop whose worker stopped beating long ago; its id."""
    from app.models import Action

    action = session.scalar(select(Action).where(Action.name == "noop", Action.pack_name == "core"))
    row = Execution(action_id=action.id, action_ref="core.noop", pack_name="core", runner_type="noop",
                    status="running", worker_host="gone@nowhere", started_at=datetime(2020, 1, 1, tzinfo=UTC),
                    heartbeat_at=datetime(2020, 1, 1, tzinfo=UTC), context={}, parameters={})
    session.add(row)
    session.commit()
    return row.id


def test_a_lost_resume_message_is_recovered_by_the_sweeper(app, worker_api, core_pack):
    from app.services import unit_of_work
    from tasks import maintenance

    created = execute(worker_api, "core.ask")
    wait_until_status(worker_api, created["id"], "pending")

    answer(app, created["id"], {"continue": True}, send=False)

    with app.test_request_context():
        assert maintenance.resume_lost() == []  # too young: the message may still be on its way
        app.config["REQUEUE_AFTER_SECONDS"], saved = 0, app.config["REQUEUE_AFTER_SECONDS"]
        try:
            assert created["id"] in maintenance.resume_lost()
        finally:
            app.config["REQUEUE_AFTER_SECONDS"] = saved
        unit_of_work.drain()
    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded"
    assert done["result"]["response"] == {"continue": True}


def test_cancel_of_a_tree_ends_queued_running_and_waiting_descendants(app, worker_api, tree, shell, committed_db):
    # Two pool processes: `inner` (a tree) runs first and waits on its own child `ask`;
    # `a` and `b` then hold both processes, so `ask` and `q` stay queued behind them.
    created = execute(worker_api, tree, children=[
        {"action": tree, "parameters": {"children": [{"action": "core.ask", "name": "ask"}]}, "name": "inner"},
        {"action": shell, "parameters": {"cmd": SLEEP}, "name": "a"},
        {"action": shell, "parameters": {"cmd": SLEEP}, "name": "b"},
        {"action": "core.noop", "name": "q"},
    ])
    try:
        kids = wait_for(lambda: (lambda k: k if k.get("a", {}).get("status") == "running"
                                 and k.get("b", {}).get("status") == "running"
                                 and k.get("inner", {}).get("waiting_on") == "children" else None)(
            children_of(worker_api, created["id"])), 30)
        sleepers = [int(wait_for(lambda i=kids[n]["id"]: logged(worker_api, i, r"child=(\d+)")).group(1)) for n in "ab"]
        grandchild = children_of(worker_api, kids["inner"]["id"])["ask"]
        assert kids["q"]["status"] == "requested" and grandchild["status"] == "requested"

        response = worker_api.post(f"/api/v1/executions/{created['id']}/cancel")

        assert response.status_code == 200
        assert response.get_json()["status"] == "canceling"  # its running children are still being killed
        done = wait_until_done(worker_api, created["id"], timeout=30)
        assert done["status"] == "canceled"
        every = {**{n: worker_api.get(f"/api/v1/executions/{k['id']}").get_json() for n, k in kids.items()},
                 "ask": worker_api.get(f"/api/v1/executions/{grandchild['id']}").get_json()}
        assert {n: e["status"] for n, e in every.items()} == dict.fromkeys(("inner", "a", "b", "q", "ask"), "canceled")
        assert every["q"]["started_at"] is None and every["ask"]["started_at"] is None  # never ran
        assert parsed(done["finished_at"]) >= max(parsed(e["finished_at"]) for e in every.values())
        assert wait_for(lambda: all(gone(pid) for pid in sleepers), 10)
        # Nothing of the tree runs later: the queued ones' messages find them canceled.
        assert committed_db.scalar(select(Execution.id).where(Execution.root_id == created["id"],
                                                              Execution.status != "canceled")) is None
    finally:
        for execution_id in [created["id"], *(k["id"] for k in children_of(worker_api, created["id"]).values())]:
            kill_leftovers(execution_id)


def test_cancel_of_a_subtree_leaves_the_rest_of_the_tree_running(worker_api, tree, shell):
    created = execute(worker_api, tree, children=[
        {"action": tree, "parameters": {"children": [{"action": "core.ask", "name": "ask"}]}, "name": "inner"},
        {"action": "core.ask", "name": "other"},
    ])
    kids = wait_for(lambda: (lambda k: k if k.get("inner", {}).get("waiting_on") == "children"
                             and k.get("other", {}).get("status") == "pending" else None)(
        children_of(worker_api, created["id"])), 30)

    assert worker_api.post(f"/api/v1/executions/{kids['inner']['id']}/cancel").status_code == 200

    assert wait_until_done(worker_api, kids["inner"]["id"])["status"] == "canceled"
    ask = children_of(worker_api, kids["inner"]["id"])["ask"]
    assert ask["status"] == "canceled"
    parent = worker_api.get(f"/api/v1/executions/{created['id']}").get_json()
    other = worker_api.get(f"/api/v1/executions/{kids['other']['id']}").get_json()
    assert (parent["status"], parent["waiting_on"]) == ("running", "children")
    assert other["status"] == "pending"
    # Cancel of the whole tree ends the rest; a second cancel of an ended one is a 409.
    assert worker_api.post(f"/api/v1/executions/{created['id']}/cancel").status_code == 200
    assert wait_until_done(worker_api, created["id"])["status"] == "canceled"
    assert worker_api.post(f"/api/v1/executions/{created['id']}/cancel").status_code == 409


def test_an_execution_whose_secret_is_missing_from_vault_fails_clearly(app, worker_api, make_action):
    from app.db import db
    from app.services import executions, unit_of_work, vault

    ref = make_action("tree.secretive", "local-shell-cmd", parameters={
        "password": {"type": "string", "secret": True, "required": True},
        "cmd": {"default": "echo got={{ password }}"}})
    with app.test_request_context():
        execution = executions.create_execution(executions.action_for_execute(ref), {"password": "hunter2"})
        vault.delete_secret(vault.execution_secret_path(execution.id))  # lost before the worker reads it
        unit_of_work.commit()
        execution_id = execution.id
        db.session.remove()

    done = wait_until_done(worker_api, execution_id)

    assert done["status"] == "failed"
    assert "'password' is not in Vault" in done["error"]
    assert done["started_at"] is not None
    assert worker_api.get(f"/api/v1/executions/{execution_id}/logs").get_json() == []  # nothing ran


def test_a_stale_heartbeat_abandons_a_running_execution_but_never_a_waiting_one(app, worker_api, core_pack,
                                                                               committed_db):
    from tasks import maintenance

    created = execute(worker_api, "core.ask")
    wait_until_status(worker_api, created["id"], "pending")
    committed_db.execute(update(Execution).where(Execution.id == created["id"])
                         .values(heartbeat_at=datetime(2020, 1, 1)))
    committed_db.commit()

    with app.test_request_context():
        assert created["id"] not in maintenance.abandon_stale()

    assert worker_api.get(f"/api/v1/executions/{created['id']}").get_json()["status"] == "pending"
    assert worker_api.post(f"/api/v1/executions/{created['id']}/cancel").get_json()["status"] == "canceled"
