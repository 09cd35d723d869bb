"""Executions per second through Patchbay versus plain Celery, on one broker and worker.

``python -m bench.executions [-n 300]`` (``make bench``). It uses its own PostgreSQL database
(``patchbay_bench``) and Redis db (PATCHBAY_BENCH_REDIS_DB, default 13), both wiped first, on
the services the test suite uses (local ones, or embedded), and starts one worker
(``celery -A bench.worker_app worker --pool prefork -c 2``, queues actions/events/celery).

1. Patchbay: N ``POST /api/v1/actions/core.noop/execute`` through the Flask test client (in
   process: authentication, validation, the insert, commit and send — no HTTP server), then
   wait until every execution has ended. Throughput = N / (first request → last end).
   Request-to-start latency = ``started_at - created_at`` per execution, from the rows.
2. Plain Celery: N ``send_task`` of a noop task on the same worker, then ``get()`` of each.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

from sqlalchemy import text

from app.config import ROOT
from bench.environment import prepare_environment

BENCH_DB = "patchbay_bench"


def start_worker() -> tuple[subprocess.Popen, str]:
    hostname = f"bench-{os.getpid()}@{socket.gethostname()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench.worker_app", "worker", "-Q", "actions,events,celery",
         "--pool", "prefork", "-c", "2", "--hostname", hostname, "--loglevel", "WARNING", "-E",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc, hostname


def stop_worker(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def setup_app():
    from app import create_app
    from app.db import db
    from app.migrate import upgrade
    from app.models import Identity, Pack
    from app.security.tokens import issue_tokens
    from app.services.actions import create_action
    from app.services.rbac import assign_role, ensure_builtin_roles

    upgrade(os.environ["DATABASE_URL"])
    app = create_app()
    with app.app_context():
        from app.extensions import redis_client

        redis_client().flushdb()
        roles = ensure_builtin_roles()
        identity = Identity(name="bench", kind="user", enabled=True)
        db.session.add_all([identity, Pack(name="core")])
        db.session.flush()
        assign_role(identity, roles["admin"])
        create_action({"pack_name": "core", "name": "noop", "runner_type": "noop"})
        db.session.commit()
    with app.test_request_context():
        token = issue_tokens(identity.id)["access_token"]
    return app, {"Authorization": f"Bearer {token}"}


def wait_for_worker(app, hostname: str) -> None:
    from app.services.queue import celery_app

    with app.app_context():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if celery_app().control.ping(timeout=0.5, destination=[hostname]):
                return
        raise SystemExit("the benchmark worker did not answer ping")


def bench_patchbay(app, headers: dict[str, str], n: int) -> tuple[float, list[float]]:
    from sqlalchemy import func, select

    from app.db import db
    from app.models import Execution
    from app.models.execution import TERMINAL

    client = app.test_client()
    started = time.perf_counter()
    for _ in range(n):
        response = client.post("/api/v1/actions/core.noop/execute", json={"parameters": {}}, headers=headers)
        if response.status_code != 201:
            raise SystemExit(f"execute answered {response.status_code}: {response.get_data(as_text=True)}")
    with app.app_context():
        while db.session.scalar(select(func.count()).select_from(Execution)
                                .where(Execution.status.in_(sorted(TERMINAL)))) < n:
            db.session.rollback()
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        rows = db.session.execute(select(Execution.created_at, Execution.started_at, Execution.status)).all()
    failed = [r for r in rows if r.status != "succeeded"]
    if failed:
        raise SystemExit(f"{len(failed)} execution(s) did not succeed: {failed[:3]}")
    latencies = [(r.started_at - r.created_at).total_seconds() * 1000 for r in rows]
    return n / elapsed, latencies


def bench_plain_celery(app, n: int) -> tuple[float, list[float]]:
    from app.services.queue import celery_app
    from bench.worker_app import PLAIN_NOOP

    with app.app_context():
        celery = celery_app()
        started = time.perf_counter()
        results = [celery.send_task(PLAIN_NOOP, queue="actions") for _ in range(n)]
        for result in results:
            result.get(timeout=120)
        elapsed = time.perf_counter() - started
        round_trips = []
        for _ in range(min(n, 200)):
            begin = time.perf_counter()
            celery.send_task(PLAIN_NOOP, queue="actions").get(timeout=30)
            round_trips.append((time.perf_counter() - begin) * 1000)
    return n / elapsed, round_trips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="executions and tasks per measurement (default 300)")
    args = parser.parse_args()
    prepare_environment(BENCH_DB)
    app, headers = setup_app()
    worker, hostname = start_worker()
    try:
        wait_for_worker(app, hostname)
        bench_patchbay(app, headers, min(20, args.n))  # warm-up: imports, connections, pool
        from app.db import db

        with app.app_context():
            db.session.execute(text("TRUNCATE executions, execution_log_lines RESTART IDENTITY CASCADE"))
            db.session.commit()
        patchbay_rate, latencies = bench_patchbay(app, headers, args.n)
        celery_rate, round_trips = bench_plain_celery(app, args.n)
    finally:
        stop_worker(worker)
    print(f"N = {args.n}, worker prefork x2, Redis broker and result backend, task events on")
    print(f"Patchbay executions (POST execute -> succeeded): {patchbay_rate:8.1f} executions/s")
    print(f"plain Celery noop tasks (send_task -> get):      {celery_rate:8.1f} tasks/s")
    print(f"ratio Patchbay / plain Celery:                   {patchbay_rate / celery_rate:8.2f}")
    print(f"request-to-start latency: p50 {percentile(latencies, 0.5):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms"
          f" (median of all {len(latencies)}: {statistics.median(latencies):.1f} ms)")
    print(f"plain Celery round trip (one at a time): p50 {percentile(round_trips, 0.5):.1f} ms,"
          f" p99 {percentile(round_trips, 0.99):.1f} ms")


if __name__ == "__main__":
    main()
