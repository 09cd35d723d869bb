"""Orquesta workflows on a real worker: every task a child execution, the workflow waiting on
them without a worker slot, chords for fan-out, the state in PostgreSQL.

The workflows are the ``wftest`` pack's (tests/workflows/packs/wftest), in the forms a
StackStorm pack writes: inline ``action: core.echo message="..."`` parameters, ``publish``
strings and lists, ``do`` strings and lists, ``next: - do: fail``, ``join: all``, ``with``
items with a concurrency, ``retry``, YAQL and Jinja.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import psutil
import pytest
from sqlalchemy import TEXT, func, select, update

from app.models import Execution, Inquiry
from app.services import queue
from tests.executions.conftest import wait_for, wait_until_done, wait_until_status
from tests.executions.test_lifecycle import execute, gone, kill_leftovers, logged, sweep
from tests.executions.test_workers import only_on
from tests.worker import spawn_worker, stop_group, worker_name

pytestmark = pytest.mark.usefixtures("wf_pack")


def parsed(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def children(api, execution_id: int, **query) -> list[dict]:
    response = api.get(f"/api/v1/executions/{execution_id}/children", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_sequence_publishes_and_its_output_uses_both_languages(worker_api):
    created = execute(worker_api, "wftest.sequence", who="world")
    done = wait_until_done(worker_api, created["id"], timeout=60)

    assert done["status"] == "succeeded", done
    assert done["result"]["output"] == {"greeting": "hello world", "shouted": "HELLO WORLD"}
    tasks = children(worker_api, created["id"])
    assert [(t["task_name"], t["action"], t["status"], t["depth"]) for t in tasks] == [
        ("greet", "core.echo", "succeeded", 1), ("shout", "core.local", "succeeded", 1)]
    assert all(t["parent_id"] == created["id"] and t["root_id"] == created["id"] for t in tasks)
    # The inline parameter became the child's parameter; the Jinja input was rendered.
    assert tasks[0]["parameters"]["message"] == "hello world"
    assert tasks[1]["parameters"]["cmd"] == "echo HELLO WORLD"
    # Listing by root holds the whole tree, the root included.
    tree = worker_api.get("/api/v1/executions", query_string={"root": created["id"]}).get_json()
    assert sorted(row["id"] for row in tree) == sorted([created["id"], *(t["id"] for t in tasks)])


def test_parallel_branches_join_with_both_contexts(worker_api):
    created = execute(worker_api, "wftest.parallel", base=4)
    done = wait_until_done(worker_api, created["id"], timeout=60)

    assert done["status"] == "succeeded", done
    assert done["result"]["output"] == {"left": 40, "right": 5, "sum": 45}
    names = [t["task_name"] for t in children(worker_api, created["id"])]
    # `start` has no action (it only transitions); the join ran once, after both branches.
    assert sorted(names) == ["left", "right", "total"]
    assert names[-1] == "total"


def test_with_items_keep_item_order_and_each_child_knows_its_item(worker_api):
    created = execute(worker_api, "wftest.fanout")
    done = wait_until_done(worker_api, created["id"], timeout=60)

    assert done["status"] == "succeeded", done
    assert done["result"]["output"] == {"echoed": ["alpha", "beta", "gamma", "delta"]}
    items = children(worker_api, created["id"])
    assert sorted((t["item_index"], t["parameters"]["message"]) for t in items) == [
        (0, "alpha"), (1, "beta"), (2, "gamma"), (3, "delta")]
    assert {t["task_name"] for t in items} == {"each"}


def test_a_thousand_items_at_concurrency_twenty_complete(worker_api, committed_db):
    created = execute(worker_api, "wftest.items", count=1000, concurrency=20)
    done = wait_until_done(worker_api, created["id"], timeout=300)

    assert done["status"] == "succeeded", done
    assert done["result"]["output"] == {"done": 1000}
    committed_db.rollback()
    counts = dict(committed_db.execute(
        select(Execution.status, func.count()).where(Execution.parent_id == created["id"])
        .group_by(Execution.status)).all())
    assert counts == {"succeeded": 1000}
    indexes = committed_db.scalars(select(Execution.item_index).where(Execution.parent_id == created["id"])).all()
    assert sorted(indexes) == list(range(1000))
    # Never more than 20 items at once: each child started after at most 19 others were running.
    rows = committed_db.execute(select(Execution.started_at, Execution.finished_at)
                                .where(Execution.parent_id == created["id"])).all()
    events = sorted([(row.started_at, 1) for row in rows] + [(row.finished_at, -1) for row in rows],
                    key=lambda event: (event[0], event[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak <= 20


def test_a_failing_task_fails_the_workflow_unless_a_transition_handles_it(worker_api, committed_db,
                                                                          celery_worker):
    unhandled = execute(worker_api, "wftest.failing", handled=False)
    handled = execute(worker_api, "wftest.failing", handled=True)
    failed = wait_until_done(worker_api, unhandled["id"], timeout=60)
    recovered = wait_until_done(worker_api, handled["id"], timeout=60)

    assert failed["status"] == "failed", failed
    assert failed["result"]["errors"], failed
    assert "breaks" in failed["error"] or any(e.get("task_id") == "breaks" for e in failed["result"]["errors"])
    assert [t["task_name"] for t in children(worker_api, unhandled["id"])] == ["breaks"]

    assert recovered["status"] == "succeeded", recovered
    assert recovered["result"]["output"] == {"code": 3}
    tasks = {t["task_name"]: t for t in children(worker_api, handled["id"])}
    assert set(tasks) == {"breaks", "cleanup"}
    assert tasks["cleanup"]["parameters"]["message"] == "cleaned up after 3"

    # The failed child went out in a chord: the worker says so in one INFO line, not with a
    # ChordError traceback at ERROR (the failure is the workflow's to handle, and it did).
    committed_db.rollback()
    task_ids = committed_db.scalars(select(Execution.task_id).where(
        Execution.parent_id.in_([unhandled["id"], handled["id"]]), Execution.task_name == "breaks")).all()
    committed_db.rollback()
    assert len(task_ids) == 2
    lines = wait_for(lambda: [line for line in celery_worker.log().splitlines()
                              if any(f"child task {task_id} raised" in line for task_id in task_ids)] or None)
    assert len(lines) == 2 and all(" INFO celery.backends.redis " in line for line in lines), lines
    assert "ChordError" not in celery_worker.log()


def test_do_fail_fails_the_workflow_after_a_task_that_succeeded(worker_api):
    done = wait_until_done(worker_api, execute(worker_api, "wftest.explicit_fail")["id"], timeout=60)
    assert done["status"] == "failed", done
    assert [t["status"] for t in children(worker_api, done["id"])] == ["succeeded"]


def test_a_task_is_retried_by_its_retry_and_not_by_the_action_policy(worker_api, action_tmp):
    marker = action_tmp / "flaky"
    done = wait_until_done(worker_api, execute(worker_api, "wftest.retry", marker=str(marker))["id"], timeout=60)

    assert done["status"] == "succeeded", done
    assert done["result"]["output"] == {"said": "second"}
    attempts = children(worker_api, done["id"])
    assert [(t["task_name"], t["status"]) for t in attempts] == [("flaky", "failed"), ("flaky", "succeeded")]


def test_a_nested_workflow_is_a_child_with_its_own_children(worker_api):
    created = execute(worker_api, "wftest.nested", who="deep")
    done = wait_until_done(worker_api, created["id"], timeout=90)

    assert done["status"] == "succeeded", done
    assert done["result"]["output"] == {"inner": "HELLO DEEP"}
    tree = children(worker_api, created["id"], recursive="true")
    assert [(t["task_name"], t["depth"]) for t in tree] == [("inner", 1), ("greet", 2), ("shout", 2)]
    assert {t["root_id"] for t in tree} == {created["id"]}
    assert [t["task_name"] for t in children(worker_api, created["id"], depth=1)] == ["inner"]


def test_an_approval_waits_for_a_person_and_goes_on_with_the_answer(worker_api, committed_db):
    created = execute(worker_api, "wftest.approval")
    ask = wait_for(lambda: next(iter(children(worker_api, created["id"])), None), timeout=30)
    wait_until_status(worker_api, ask["id"], "pending")
    # The workflow waits on its child without a worker; the ask waits on a person.
    workflow = worker_api.get(f"/api/v1/executions/{created['id']}").get_json()
    assert (workflow["status"], workflow["waiting_on"]) == ("running", "children")

    committed_db.rollback()
    inquiry = committed_db.scalar(select(Inquiry.id).where(Inquiry.execution_id == ask["id"]))
    committed_db.rollback()
    wrong = worker_api.post(f"/api/v1/inquiries/{inquiry}/respond", json={"response": {"approved": "yes"}})
    assert wrong.status_code == 422
    answered = worker_api.post(f"/api/v1/inquiries/{inquiry}/respond", json={"response": {"approved": True}})
    assert answered.status_code == 200, answered.get_json()
    done = wait_until_done(worker_api, created["id"], timeout=60)

    assert done["status"] == "succeeded", done
    assert done["result"]["output"] == {"approved": True}
    assert [t["task_name"] for t in children(worker_api, created["id"])] == ["ask", "go_on"]


def test_a_rejected_approval_takes_the_failure_path(worker_api, committed_db):
    created = execute(worker_api, "wftest.approval")
    ask = wait_for(lambda: next(iter(children(worker_api, created["id"])), None), timeout=30)
    wait_until_status(worker_api, ask["id"], "pending")
    committed_db.rollback()
    inquiry = committed_db.scalar(select(Inquiry.id).where(Inquiry.execution_id == ask["id"]))
    committed_db.rollback()
    assert worker_api.post(f"/api/v1/inquiries/{inquiry}/respond",
                           json={"response": {"approved": False}}).status_code == 200

    done = wait_until_done(worker_api, created["id"], timeout=60)
    assert done["status"] == "failed", done
    assert [t["task_name"] for t in children(worker_api, created["id"])] == ["ask"]


def _pids_of_naps(api, execution_id: int, count: int, running: int | None = None) -> list[int]:
    """The sleeps' pids once ``count`` naps exist and ``running`` of them (all by default) run."""
    def started():
        naps = children(api, execution_id)
        found = [int(m.group(1)) for m in (logged(api, nap["id"], r"child=(\d+)") for nap in naps) if m]
        return found if len(naps) == count and len(found) == (running or count) else None

    return wait_for(started, timeout=60)


def test_cancel_mid_fan_out_ends_every_child_canceled_and_kills_their_processes(worker_api):
    # Four naps at once on a worker of two pool processes: two run, two are queued.
    created = execute(worker_api, "wftest.sleepy", count=4)
    try:
        pids = _pids_of_naps(worker_api, created["id"], 4, running=2)
        assert all(psutil.pid_exists(pid) for pid in pids)

        response = worker_api.post(f"/api/v1/executions/{created['id']}/cancel")
        assert response.status_code == 200, response.get_json()
        done = wait_until_done(worker_api, created["id"], timeout=60)

        assert done["status"] == "canceled", done
        naps = children(worker_api, created["id"])
        assert [t["status"] for t in naps] == ["canceled"] * 4
        assert {t["task_name"] for t in naps} == {"nap"}  # `after` never started
        wait_for(lambda: all(gone(pid) for pid in pids), timeout=30)
    finally:
        for nap in children(worker_api, created["id"]):
            kill_leftovers(nap["id"])


def test_pause_lets_running_tasks_finish_and_starts_nothing_until_resumed(worker_api):
    created = execute(worker_api, "wftest.sleepy", count=2, seconds=2)
    _pids_of_naps(worker_api, created["id"], 2)

    paused = worker_api.post(f"/api/v1/executions/{created['id']}/pause")
    assert paused.status_code == 200, paused.get_json()
    assert paused.get_json()["status"] == "pausing"
    wait_until_status(worker_api, created["id"], "paused", timeout=30)
    naps = children(worker_api, created["id"])
    assert [(t["task_name"], t["status"]) for t in naps] == [("nap", "succeeded")] * 2  # `after` waits
    again = worker_api.post(f"/api/v1/executions/{created['id']}/pause")
    assert again.status_code == 409

    resumed = worker_api.post(f"/api/v1/executions/{created['id']}/resume")
    assert resumed.status_code == 200, resumed.get_json()
    done = wait_until_done(worker_api, created["id"], timeout=60)
    assert done["status"] == "succeeded", done
    assert [t["task_name"] for t in children(worker_api, created["id"])] == ["nap", "nap", "after"]
    assert worker_api.post(f"/api/v1/executions/{created['id']}/resume").status_code == 409


def test_pause_and_resume_refuse_what_is_not_a_workflow(worker_api):
    done = wait_until_done(worker_api, execute(worker_api, "core.noop")["id"])
    for verb in ("pause", "resume"):
        response = worker_api.post(f"/api/v1/executions/{done['id']}/{verb}")
        assert response.status_code == 409
        assert "not a workflow" in response.get_json()["message"]


def test_rerun_from_the_failed_task_keeps_what_was_published_before(worker_api, action_tmp):
    marker = action_tmp / "rerun-ready"
    first = wait_until_done(worker_api, execute(worker_api, "wftest.rerun", marker=str(marker))["id"], timeout=60)
    assert first["status"] == "failed", first
    published = [t for t in children(worker_api, first["id"]) if t["task_name"] == "first"][0]

    marker.touch()
    response = worker_api.post(f"/api/v1/executions/{first['id']}/rerun", json={"tasks": ["second"]})
    assert response.status_code == 201, response.get_json()
    rerun = wait_until_done(worker_api, response.get_json()["id"], timeout=60)

    assert rerun["status"] == "succeeded", rerun
    assert rerun["rerun_of"] == first["id"]
    # `first` did not run again: what it published the first time is what `second` saw.
    assert [t["task_name"] for t in children(worker_api, rerun["id"])] == ["second"]
    pid = worker_api.get(f"/api/v1/executions/{published['id']}").get_json()["result"]["stdout"]
    assert rerun["result"]["output"] == {"first_pid": pid, "second": f"got {pid}"}

    unknown = worker_api.post(f"/api/v1/executions/{first['id']}/rerun", json={"tasks": ["nope"]})
    assert unknown.status_code == 422
    assert "nope" in str(unknown.get_json())


def test_a_workflow_whose_worker_died_while_it_waited_goes_on(worker_api, celery_worker):
    # The workflow waits holding no worker: killing every pool process while its tasks run
    # loses nothing; the children's ends (or the sweeper) resume it on a new pool process.
    created = execute(worker_api, "wftest.sleepy", count=2, seconds=3)
    _pids_of_naps(worker_api, created["id"], 2)
    workflow = worker_api.get(f"/api/v1/executions/{created['id']}").get_json()
    assert workflow["waiting_on"] == "children"
    idle = [p for p in celery_worker.pool_children()
            if not any(c.name() == "sleep" for c in p.children(recursive=True))]
    for process in idle:
        os.kill(process.pid, signal.SIGKILL)

    done = wait_until_done(worker_api, created["id"], timeout=90)
    assert done["status"] == "succeeded", done


def test_a_secret_a_workflow_decrypts_is_masked_in_its_tasks_and_stored_nowhere(worker_api, committed_db):
    value = "wf-secret-7f3c9a"
    assert worker_api.post("/api/v1/keys", json={"name": "wf_token", "value": value, "secret": True}).status_code == 201
    done = wait_until_done(worker_api, execute(worker_api, "wftest.secret")["id"], timeout=60)

    assert done["status"] == "succeeded", done
    # The task's parameter holding the value became a secret parameter of the task: masked
    # wherever it shows (as a whole), kept in Vault for the run.
    # `measure` saw the real value: its length.
    assert done["result"]["output"] == {"said": "********", "length": len(value)}
    task = {t["task_name"]: t for t in children(worker_api, done["id"])}["use"]
    shown = worker_api.get(f"/api/v1/executions/{task['id']}").get_json()
    assert shown["parameters"]["message"] == "********"
    assert shown["result"]["stdout"] == "********"
    assert shown["context"]["secret_parameters"] == ["message"]
    committed_db.rollback()
    rows = committed_db.execute(select(func.count()).select_from(Execution)
                                .where(func.cast(Execution.__table__.c.parameters, TEXT).contains(value)
                                       | func.cast(Execution.__table__.c.result, TEXT).contains(value)
                                       | func.cast(Execution.__table__.c.context, TEXT).contains(value))).scalar()
    assert rows == 0


def test_a_join_count_starts_on_the_first_arrival_and_a_delay_holds_a_task(worker_api):
    created = execute(worker_api, "wftest.first_wins")
    done = wait_until_done(worker_api, created["id"], timeout=60)

    assert done["status"] == "succeeded", done
    assert done["result"]["output"] == {"said": "fast won"}
    tasks = {t["task_name"]: t for t in children(worker_api, created["id"])}
    assert set(tasks) == {"fast", "slow", "first"}
    rows = {name: worker_api.get(f"/api/v1/executions/{t['id']}").get_json() for name, t in tasks.items()}
    # `first` ran once, before `slow` had ended; `slow` waited its second of delay.
    assert rows["first"]["started_at"] < rows["slow"]["finished_at"]
    slow_wait = parsed(rows["slow"]["started_at"]) - parsed(rows["slow"]["created_at"])
    assert slow_wait.total_seconds() >= 1


def _ask_of(api, workflow_id: int, committed_db) -> tuple[dict, int]:
    ask = wait_for(lambda: next(iter(children(api, workflow_id)), None), timeout=30)
    wait_until_status(api, ask["id"], "pending")
    committed_db.rollback()
    inquiry = committed_db.scalar(select(Inquiry.id).where(Inquiry.execution_id == ask["id"]))
    committed_db.rollback()
    return ask, inquiry


def test_a_workflow_waiting_on_a_person_survives_its_workers_death(worker_api, committed_db, celery_worker):
    created = execute(worker_api, "wftest.approval")
    _, inquiry = _ask_of(worker_api, created["id"], committed_db)
    for process in celery_worker.pool_children():
        os.kill(process.pid, signal.SIGKILL)  # nothing of the workflow runs: nothing is lost

    answered = worker_api.post(f"/api/v1/inquiries/{inquiry}/respond", json={"response": {"approved": True}})
    assert answered.status_code == 200, answered.get_json()
    done = wait_until_done(worker_api, created["id"], timeout=90)
    assert done["status"] == "succeeded", done
    assert done["result"]["output"] == {"approved": True}


def test_an_approval_that_times_out_takes_the_failure_path(app, worker_api, committed_db):
    from app.db import db
    from app.services import unit_of_work
    from tasks.inquiries import expire_inquiries

    created = execute(worker_api, "wftest.approval")
    ask, inquiry = _ask_of(worker_api, created["id"], committed_db)
    committed_db.execute(update(Inquiry).where(Inquiry.id == inquiry).values(expires_at=datetime.now(UTC)))
    committed_db.commit()
    with app.app_context():
        expire_inquiries.run()
        unit_of_work.drain()
        db.session.remove()

    done = wait_until_done(worker_api, created["id"], timeout=60)
    assert done["status"] == "failed", done
    assert worker_api.get(f"/api/v1/executions/{ask['id']}").get_json()["status"] == "failed"
    assert worker_api.get(f"/api/v1/inquiries/{inquiry}").get_json()["status"] == "timed_out"
    assert [t["task_name"] for t in children(worker_api, created["id"])] == ["ask"]


def test_a_lost_chord_callback_is_made_up_by_the_sweeper(app, worker_api, tmp_path, worker_packs_path,
                                                          celery_worker):
    # A worker that does not know the chord's callback: the fan-out's children all end, the
    # callback reaches that worker and is dropped. The join is in the children's rows.
    name = f"lost-callback-{os.getpid()}"
    proc = spawn_worker(app, tmp_path / "lost.log", name, worker_packs_path, queues=queue.ACTIONS_QUEUE,
                        extra_env={"PATCHBAY_TEST_UNREGISTER": queue.JOIN_CHILDREN})
    try:
        with only_on(app, worker_name(name), celery_worker):
            created = execute(worker_api, "wftest.fanout")

            def all_ended():
                tasks = children(worker_api, created["id"])
                return len(tasks) == 4 and all(t["status"] == "succeeded" for t in tasks)

            wait_for(all_ended, timeout=60)
            wait_for(lambda: "unregistered task" in (tmp_path / "lost.log").read_text(), timeout=30)
            stuck = worker_api.get(f"/api/v1/executions/{created['id']}").get_json()
            assert (stuck["status"], stuck["waiting_on"]) == ("running", "children")

            def swept():
                return created["id"] in sweep(app).get("resumed", [])

            wait_for(swept, timeout=30, every=1)
            # The resume may be running on the worker that dropped the callback: it must not
            # be stopped under it.
            done = wait_until_done(worker_api, created["id"], timeout=60)
    finally:
        stop_group(proc)
    assert done["status"] == "succeeded", done
    assert done["result"]["output"] == {"echoed": ["alpha", "beta", "gamma", "delta"]}
