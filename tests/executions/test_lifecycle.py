"""Timeout, cancel (queued and running), a killed worker, redelivery and retries — for real."""

from __future__ import annotations

import os
import re
import signal
import time

import psutil
from sqlalchemy import func, select

from app.models import Execution, ExecutionLogLine
from app.services import executions, queue
from tests.executions.conftest import wait_for, wait_until_done


def execute(api, ref: str, **parameters) -> dict:
    response = api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": parameters})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def logged(api, execution_id: int, pattern: str) -> re.Match | None:
    lines = api.get(f"/api/v1/executions/{execution_id}/logs").get_json()
    for item in lines:
        found = re.search(pattern, item["line"])
        if found:
            return found
    return None


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def kill_group_if_left(pid: int) -> None:
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def send_run(app, execution_id: int):
    with app.app_context():
        return queue.celery_app().send_task(queue.RUN_EXECUTION, args=[execution_id])


def test_timeout_ends_in_timeout_and_kills_the_process_tree(worker_api, make_action):
    ref = make_action("life.slow", "local-shell-cmd", timeout=2, parameters={"cmd": {"type": "string"}})

    created = execute(worker_api, ref, cmd="sleep 300 & echo child=$!; wait")

    sleeper = int(wait_for(lambda: logged(worker_api, created["id"], r"child=(\d+)")).group(1))
    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "timeout"
    assert done["error"]
    assert wait_for(lambda: gone(sleeper), 10)


def test_cancel_running_kills_the_process_tree(worker_api, make_action):
    ref = make_action("life.long", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    created = execute(worker_api, ref, cmd="sleep 300 & echo child=$!; wait")
    sleeper = int(wait_for(lambda: logged(worker_api, created["id"], r"child=(\d+)")).group(1))

    response = worker_api.post(f"/api/v1/executions/{created['id']}/cancel")

    assert response.status_code == 200
    assert response.get_json()["status"] in ("canceling", "canceled")
    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "canceled"
    assert wait_for(lambda: gone(sleeper), 10)
    again = worker_api.post(f"/api/v1/executions/{created['id']}/cancel")
    assert again.status_code == 409
    assert set(again.get_json()) == {"code", "status", "message", "errors"}


def test_cancel_queued_is_immediate_and_a_late_message_never_starts_it(app, worker_api, make_action, committed_db):
    make_action("life.queued", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    with app.test_request_context():
        execution = executions.create_execution(executions.action_for_execute("life.queued"), {"cmd": "echo ran"})
        committed_db.commit()
        execution_id = execution.id

    response = worker_api.post(f"/api/v1/executions/{execution_id}/cancel")

    assert response.status_code == 200
    assert response.get_json()["status"] == "canceled"
    late = send_run(app, execution_id)  # delivered after the cancel, with a fresh task id
    assert late.get(timeout=30) == {"execution": execution_id, "claimed": False, "status": "canceled"}
    body = worker_api.get(f"/api/v1/executions/{execution_id}").get_json()
    assert body["status"] == "canceled"
    assert body["started_at"] is None
    assert worker_api.get(f"/api/v1/executions/{execution_id}/logs").get_json() == []


def test_a_redelivered_message_does_not_run_twice(app, worker_api, make_action, committed_db):
    ref = make_action("life.once", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    created = execute(worker_api, ref, cmd="echo once")
    first = wait_until_done(worker_api, created["id"])

    duplicate = send_run(app, created["id"])

    assert duplicate.get(timeout=30)["claimed"] is False
    after = worker_api.get(f"/api/v1/executions/{created['id']}").get_json()
    assert after["finished_at"] == first["finished_at"]
    assert after["status"] == "succeeded"
    lines = committed_db.scalar(select(func.count()).select_from(ExecutionLogLine)
                                .where(ExecutionLogLine.execution_id == created["id"]))
    assert lines == 1


def sweep(app) -> dict:
    with app.app_context():
        return queue.celery_app().send_task(queue.SWEEP_EXECUTIONS).get(timeout=30)


def kill_pool_child_running(api, execution_id: int, celery_worker) -> None:
    pool_child = int(wait_for(lambda: logged(api, execution_id, r"pool=(\d+)")).group(1))
    assert pool_child in [p.pid for p in celery_worker.pool_children()]
    os.kill(pool_child, signal.SIGKILL)


def kill_leftovers(execution_id: int) -> None:
    # SIGKILL of the pool process leaves the shell it started orphaned; tidy up after the test.
    for proc in psutil.process_iter(["environ"]):
        if (proc.info["environ"] or {}).get("PATCHBAY_EXECUTION_ID") == str(execution_id):
            kill_group_if_left(proc.pid)


def test_killed_worker_process_with_a_retry_policy_gets_a_new_attempt(app, worker_api, make_action, celery_worker,
                                                                     committed_db, action_tmp):
    marker = action_tmp / "first-attempt"
    ref = make_action("life.phoenix", "local-shell-cmd", retry={"retries": 1, "on": ["abandoned"]},
                      parameters={"cmd": {"type": "string"}})
    created = execute(worker_api, ref, cmd=f"if [ -f {marker} ]; then echo second; else touch {marker}; "
                                           f"echo pool=$PPID; sleep 300; fi")
    try:
        kill_pool_child_running(worker_api, created["id"], celery_worker)

        def retried():
            sweep(app)
            committed_db.rollback()
            return committed_db.scalar(select(Execution.id).where(Execution.rerun_of == created["id"]))

        retry_id = wait_for(retried, 30, every=1)
        assert worker_api.get(f"/api/v1/executions/{created['id']}").get_json()["status"] == "abandoned"
        retry = wait_until_done(worker_api, retry_id)
        assert retry["status"] == "succeeded"
        assert retry["attempt"] == 2
        assert retry["result"]["stdout"].strip() == "second"
    finally:
        kill_leftovers(created["id"])


def test_killed_worker_process_leaves_the_execution_abandoned(app, worker_api, make_action, celery_worker):
    ref = make_action("life.victim", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    created = execute(worker_api, ref, cmd="echo pool=$PPID; sleep 300")
    try:
        kill_pool_child_running(worker_api, created["id"], celery_worker)

        def abandoned():
            sweep(app)
            body = worker_api.get(f"/api/v1/executions/{created['id']}").get_json()
            return body if body["status"] == "abandoned" else None

        body = wait_for(abandoned, 30, every=1)
        assert "heartbeat" in body["error"]
        assert any(item["line"].startswith("pool=") for item in
                   worker_api.get(f"/api/v1/executions/{created['id']}/logs").get_json())
    finally:
        kill_leftovers(created["id"])


def test_retry_policy_makes_a_new_attempt(worker_api, make_action, committed_db, action_tmp):
    marker = action_tmp / "first-done"
    ref = make_action("life.flaky", "local-shell-cmd", retry={"retries": 2, "delay": 0, "on": ["failed"]},
                      parameters={"cmd": {"type": "string"}})

    created = execute(worker_api, ref, cmd=f"if [ -f {marker} ]; then echo fine; else touch {marker}; exit 1; fi")

    first = wait_until_done(worker_api, created["id"])
    assert first["status"] == "failed"
    retry_id = wait_for(lambda: committed_db.scalar(
        select(Execution.id).where(Execution.rerun_of == created["id"])))
    committed_db.rollback()
    retry = wait_until_done(worker_api, retry_id)
    assert retry["status"] == "succeeded"
    assert retry["attempt"] == 2
    assert retry["context"]["retry_of"] == created["id"]
    assert retry["parameters"] == first["parameters"]


def test_lost_message_is_resent_by_the_sweeper(app, worker_api, make_action, committed_db):
    make_action("life.lost", "noop")
    with app.test_request_context():
        execution = executions.create_execution(executions.action_for_execute("life.lost"), {})
        committed_db.commit()
        committed_db().info.clear()  # its message, due after the commit, is "lost": never sent
        execution_id = execution.id

    sweeps = []

    def resent():
        sweeps.append(sweep(app))
        return execution_id in sweeps[-1].get("requeued", [])

    try:
        wait_for(resent, 30, every=1)
    except AssertionError:
        raise AssertionError(f"never re-sent; the sweeps said {sweeps[-3:]}") from None
    assert wait_until_done(worker_api, execution_id)["status"] == "succeeded"


def test_overlapping_sweeps_are_skipped(app, celery_worker):
    from app.extensions import redis_client
    from tasks.periodic import lock_key

    with app.app_context():
        held = redis_client().lock(lock_key("sweep-executions"), timeout=30)
        assert held.acquire(blocking=False)
        try:
            assert sweep(app) == {"skipped": True}
        finally:
            held.release()
    assert sweep(app)["skipped"] is False


def test_beat_runs_the_sweeper_often_enough(app):
    import tasks.maintenance  # noqa: F401 - declares its periodic tasks
    from tasks.periodic import beat_schedule

    entry = beat_schedule(app.config)["sweep-executions"]
    assert entry["task"] == queue.SWEEP_EXECUTIONS
    assert entry["schedule"] <= app.config["ABANDON_AFTER_SECONDS"] / 2


def test_a_stray_terminate_signal_does_not_cancel_the_execution_it_lands_on(worker_api, make_action, celery_worker,
                                                                          action_tmp):
    # Celery's revoke(terminate=True) signals a pool process by pid; by then that process may
    # be running the next execution, which nobody canceled. It must carry on.
    go = action_tmp / "go"
    ref = make_action("life.bystander", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    created = execute(worker_api, ref, cmd=f"echo pool=$PPID; while [ ! -f {go} ]; do sleep 0.1; done; echo finished")
    pool_child = int(wait_for(lambda: logged(worker_api, created["id"], r"pool=(\d+)")).group(1))
    assert pool_child in [p.pid for p in celery_worker.pool_children()]

    os.kill(pool_child, getattr(signal, executions.TERMINATE_SIGNAL))
    time.sleep(1)  # several cancel polls happen meanwhile; none may find a cancel
    go.touch()

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded"
    assert done["result"]["stdout"].strip().endswith("finished")
    assert psutil.pid_exists(pool_child)


def test_retry_delay_and_end_states_of_the_policy(worker_api, make_action, committed_db):
    from datetime import datetime

    ref = make_action("life.later", "local-shell-cmd", timeout=1,
                      retry={"retries": 1, "delay": 2, "on": ["timeout"]}, parameters={"cmd": {"type": "string"}})
    created = execute(worker_api, ref, cmd="sleep 30")

    assert wait_until_done(worker_api, created["id"])["status"] == "timeout"
    retry_id = wait_for(lambda: committed_db.scalar(select(Execution.id).where(Execution.rerun_of == created["id"])))
    committed_db.rollback()
    retry = worker_api.get(f"/api/v1/executions/{retry_id}").get_json()
    waited = datetime.fromisoformat(retry["scheduled_at"]) - datetime.fromisoformat(retry["created_at"])
    assert waited.total_seconds() == 2
    assert retry["status"] in ("scheduled", "running", "timeout")
    last = wait_until_done(worker_api, retry_id)
    assert last["status"] == "timeout"
    assert last["attempt"] == 2
    assert committed_db.scalar(select(func.count()).select_from(Execution)
                               .where(Execution.rerun_of == retry_id)) == 0  # retries: 1 means one more, no third


def test_the_sweeper_abandons_an_execution_whose_redis_log_holds_a_nul(app, worker_api, make_action, committed_db):
    import json
    from datetime import timedelta

    from sqlalchemy import update

    from app.db import utcnow
    from app.extensions import redis_client
    from app.services.execution_logs import log_key

    make_action("life.nul", "noop")
    with app.test_request_context():
        execution = executions.create_execution(executions.action_for_execute("life.nul"), {})
        committed_db.commit()
        execution_id = execution.id
    stale = utcnow() - timedelta(minutes=5)
    committed_db.execute(update(Execution).where(Execution.id == execution_id)
                         .values(status="running", started_at=stale, heartbeat_at=stale, worker_host="gone@nowhere"))
    committed_db.commit()
    with app.app_context():  # what a worker wrote before it died (an older worker did not clean lines)
        redis_client().rpush(log_key(execution_id), json.dumps(
            {"seq": 1, "ts": stale.isoformat(), "stream": "stdout", "line": "x\x00y"}))

    assert execution_id in sweep(app)["abandoned"]
    assert worker_api.get(f"/api/v1/executions/{execution_id}").get_json()["status"] == "abandoned"
    assert [i["line"] for i in worker_api.get(f"/api/v1/executions/{execution_id}/logs").get_json()] == ["x\ufffdy"]
