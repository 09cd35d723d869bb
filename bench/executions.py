"""Executions per second through Patchbay versus plain Celery, on one broker and worker.

``python -m bench.executions [-n 300]`` (``make bench``). It uses its own PostgreSQL database
(``patchbay_bench``) and Redis db (PATCHBAY_BENCH_REDIS_DB, default 13), both wiped first, on
the services the test suite uses (local ones, or embedded), and starts one worker from the
Procfile's ``worker:`` line (prefork, WORKER_CONCURRENCY, default 2) with ``-A bench.worker_app``.

1. Patchbay: N ``POST /api/v1/actions/core.noop/execute`` through the Flask test client (in
   process: authentication, validation, the insert, commit and send — no HTTP server), then
   wait until every execution has ended. Throughput = N / (first request → last end).
   Request-to-start latency = ``started_at - created_at`` per execution, from the rows.
2. Plain Celery: N ``send_task`` of a noop task on the same worker, then ``get()`` of each.
"""

from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import text

from bench.environment import prepare_environment
from bench.harness import (
    bench_plain_celery,
    percentile,
    setup_app,
    start_worker,
    stop_process,
    wait_for_worker,
)

BENCH_DB = "patchbay_bench"


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
        stop_process(worker)
    print(f"N = {args.n}, the Procfile's worker (prefork), Redis broker and result backend, task events on")
    print(f"Patchbay executions (POST execute -> succeeded): {patchbay_rate:8.1f} executions/s")
    print(f"plain Celery noop tasks (send_task -> get):      {celery_rate:8.1f} tasks/s")
    print(f"ratio Patchbay / plain Celery:                   {patchbay_rate / celery_rate:8.2f}")
    print(f"request-to-start latency: p50 {percentile(latencies, 0.5):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms"
          f" (median of all {len(latencies)}: {statistics.median(latencies):.1f} ms)")
    print(f"plain Celery round trip (one at a time): p50 {percentile(round_trips, 0.5):.1f} ms,"
          f" p99 {percentile(round_trips, 0.99):.1f} ms")


if __name__ == "__main__":
    main()
