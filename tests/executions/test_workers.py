"""Several workers, for real: a whole worker SIGKILLed mid-run (noticed by celery beat's
sweeper), a cancel reaching the worker on the other side, and the issue's "done when" walk.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager

import psutil
import pytest

from app.config import ROOT
from app.services import queue
from tests.executions.conftest import (
    WORKER_ENV,
    spawn_worker,
    stop_group,
    wait_for,
    wait_until_done,
    wait_until_status,
    worker_name,
)
from tests.executions.test_lifecycle import execute, gone, kill_leftovers, logged


@pytest.fixture
def second_worker(app, tmp_path, worker_packs_path, celery_worker):
    """Another worker (another "host" as far as Celery knows), consuming actions only."""
    name = f"second-{os.getpid()}"
    proc = spawn_worker(app, tmp_path / "second.log", name, worker_packs_path, queues=queue.ACTIONS_QUEUE,
                        concurrency=1)
    yield worker_name(name), proc
    stop_group(proc)


@pytest.fixture
def beat(app, tmp_path, celery_worker):
    """celery beat as the Procfile runs it, with the test worker's short heartbeat ages."""
    env = {**os.environ, **WORKER_ENV}
    with open(tmp_path / "beat.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks.worker", "beat", "--loglevel", "INFO",
             "-s", str(tmp_path / "beat-schedule")],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    yield proc
    stop_group(proc)


@contextmanager
def only_on(app, worker: str, celery_worker):
    """Route new action messages to ``worker``: the test worker stops consuming them meanwhile."""
    main = worker_name(f"pytest-{os.getpid()}")
    with app.app_context():
        control = queue.celery_app().control
        control.cancel_consumer(queue.ACTIONS_QUEUE, destination=[main], reply=True)
        try:
            yield
        finally:
            control.add_consumer(queue.ACTIONS_QUEUE, destination=[main], reply=True)


def test_a_sigkilled_worker_leaves_its_execution_abandoned_via_beat(app, worker_api, make_action, celery_worker,
                                                                  second_worker, beat):
    name, proc = second_worker
    ref = make_action("crash.whole", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    with only_on(app, name, celery_worker):
        created = execute(worker_api, ref, cmd="echo shell=$$; sleep 300 & echo child=$!; wait")
        running = wait_until_status(worker_api, created["id"], "running")
    try:
        assert running["worker_host"] == name
        shell = int(wait_for(lambda: logged(worker_api, created["id"], r"shell=(\d+)")).group(1))
        sleeper = int(wait_for(lambda: logged(worker_api, created["id"], r"child=(\d+)")).group(1))

        os.killpg(proc.pid, signal.SIGKILL)  # the worker's main process and its pool, at once
        proc.wait(5)

        # Nobody calls the sweeper here: beat's schedule does, within ABANDON_AFTER_SECONDS (4 s).
        body = wait_until_status(worker_api, created["id"], "abandoned", timeout=30)
        assert "heartbeat" in body["error"]
        assert body["finished_at"] is not None
        # The action's processes did not outlive their worker (the runner's guard killed them).
        assert wait_for(lambda: gone(shell) and gone(sleeper), 10)
    finally:
        kill_leftovers(created["id"])


def test_cancel_reaches_the_worker_on_the_other_host(app, worker_api, make_action, celery_worker, second_worker):
    name, proc = second_worker
    pool_before = [p.pid for p in psutil.Process(proc.pid).children()]
    ref = make_action("crash.remote", "local-shell-cmd", parameters={"cmd": {"type": "string"}})
    with only_on(app, name, celery_worker):
        created = execute(worker_api, ref, cmd="sleep 300 & echo child=$!; wait")
        sleeper = int(wait_for(lambda: logged(worker_api, created["id"], r"child=(\d+)")).group(1))
    assert worker_api.get(f"/api/v1/executions/{created['id']}").get_json()["worker_host"] == name

    response = worker_api.post(f"/api/v1/executions/{created['id']}/cancel")

    assert response.status_code == 200
    assert wait_until_done(worker_api, created["id"])["status"] == "canceled"
    assert wait_for(lambda: gone(sleeper), 10)
    # The pool process survived the terminate signal: it stopped its runner instead of dying.
    assert [p.pid for p in psutil.Process(proc.pid).children()] == pool_before


def follow_events(worker_api, execution_id: int):
    """Yield each SSE event (dict) as the server sends it."""
    response = worker_api.get(f"/api/v1/executions/{execution_id}/logs", query_string={"follow": "true"},
                              buffered=False)
    assert response.status_code == 200
    pending = ""
    for chunk in response.response:
        pending += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in pending:
            block, pending = pending.split("\n\n", 1)
            if "data: " not in block:
                continue  # a keepalive comment or the retry hint
            kind = "end" if block.startswith("event: end") else "line"
            yield kind, json.loads(block.split("data: ", 1)[1])
    response.close()


def test_done_when_lines_arrive_live_then_a_sleep_is_canceled(worker_api, make_action):
    ref = make_action("done.local", "local-shell-cmd", parameters={"timeout": {"type": "integer", "default": 60},
                                                                  "cmd": {"type": "string"}})
    created = execute(worker_api, ref, cmd="for i in 1 2 3; do echo $i; sleep 1; done")

    seen = []
    for kind, data in follow_events(worker_api, created["id"]):
        if kind == "line":
            # Each line arrives while the execution still runs (the loop sleeps after it).
            status = worker_api.get(f"/api/v1/executions/{created['id']}").get_json()["status"]
            seen.append((data["line"], status))
        else:
            assert data == {"status": "succeeded"}
    assert seen == [("1", "running"), ("2", "running"), ("3", "running")]

    sleeping = execute(worker_api, ref, cmd="echo pid=$$; exec sleep 600")
    pid = int(wait_for(lambda: logged(worker_api, sleeping["id"], r"pid=(\d+)")).group(1))
    assert worker_api.post(f"/api/v1/executions/{sleeping['id']}/cancel").status_code == 200
    assert wait_until_done(worker_api, sleeping["id"])["status"] == "canceled"
    assert gone(pid)
