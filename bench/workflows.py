"""A 1,000-item workflow through Patchbay versus the same fan-out as a plain Celery chord.

``python -m bench.workflows [-n 1000] [--rounds 2]`` (``make bench-workflows``). Its own
PostgreSQL database (``patchbay_bench_workflows``) and Redis db (PATCHBAY_BENCH_REDIS_DB,
default 13), wiped first. Patchbay runs as the Procfile runs it (gunicorn, one worker);
the core and examples packs are registered from packs/.

1. Patchbay: ``POST /api/v1/actions/examples.noop_fanout/execute`` (``count`` = N) over HTTP
   with an API key, until the workflow has succeeded — N child executions of ``core.noop``
   (rows, claims, ends), the workflow's own steps, the chord's callback.
2. Plain Celery: ``chord(N x noop)(join)`` on the same broker and worker, until the join's
   result is there.

Each is run ``--rounds`` times (after one warm-up of each); the best and the median wall
times are printed, and last the ratio plain Celery time / Patchbay time (1.0 = as fast).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import time

from bench.environment import prepare_environment
from bench.executions import bench_credentials
from bench.harness import (
    running_patchbay,
    setup_app,
)

BENCH_DB = "patchbay_bench_workflows"
EXECUTE = "/api/v1/actions/examples.noop_fanout/execute"
DEADLINE = 600


def register_packs() -> None:
    from app.services.pack_loader import register_pack

    register_pack("core")
    register_pack("examples")


def run_workflow(app, port: int, headers: dict[str, str], n: int) -> float:
    """Seconds from the POST to the workflow's success."""
    from app.db import db
    from app.models import Execution

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    conn.request("POST", EXECUTE, body=json.dumps({"parameters": {"count": n}}),
                 headers={"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    if response.status != 201:
        raise SystemExit(f"execute answered {response.status}: {body}")
    deadline = time.monotonic() + DEADLINE
    with app.app_context():
        while True:
            row = db.session.get(Execution, body["id"], populate_existing=True)
            db.session.rollback()
            if row.status in ("succeeded", "failed", "canceled", "timeout", "abandoned"):
                break
            if time.monotonic() > deadline:
                raise SystemExit("the workflow did not end in time")
            time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if row.status != "succeeded" or row.result.get("output", {}).get("finished") != n:
        raise SystemExit(f"the workflow ended {row.status}: {row.error} {row.result}")
    return elapsed


def run_chord(app, n: int) -> float:
    from celery import chord

    from app.services.queue import celery_app
    from bench.worker_app import PLAIN_JOIN, PLAIN_NOOP

    with app.app_context():
        celery = celery_app()
        started = time.perf_counter()
        result = chord([celery.signature(PLAIN_NOOP, queue="actions") for _ in range(n)],
                       celery.signature(PLAIN_JOIN, queue="actions"), app=celery).apply_async()
        joined = result.get(timeout=DEADLINE)
        elapsed = time.perf_counter() - started
    if joined != n:
        raise SystemExit(f"the chord joined {joined} of {n}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="items (default 1000)")
    parser.add_argument("--rounds", type=int, default=2, help="measured runs of each (default 2)")
    args = parser.parse_args()
    prepare_environment(BENCH_DB)
    app, token_headers = setup_app(register_packs)
    headers = bench_credentials(app, "apikey", token_headers)
    load_before = os.getloadavg()[0]
    with running_patchbay(app, "workflows") as port:
        run_workflow(app, port, headers, min(50, args.n))  # warm-up: imports, pools, caches
        run_chord(app, min(50, args.n))
        patchbay = [run_workflow(app, port, headers, args.n) for _ in range(args.rounds)]
        plain = [run_chord(app, args.n) for _ in range(args.rounds)]
    concurrency = os.environ.get("WORKER_CONCURRENCY", "2")
    print(f"N = {args.n} items, {args.rounds} round(s); gunicorn and worker (prefork x{concurrency}) from the"
          f" Procfile; load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"Patchbay workflow (POST -> succeeded): best {min(patchbay):7.2f} s, median {statistics.median(patchbay):7.2f} s"
          f" ({args.n / min(patchbay):.0f} children/s)")
    print(f"plain Celery chord (apply_async -> join): best {min(plain):7.2f} s, median {statistics.median(plain):7.2f} s"
          f" ({args.n / min(plain):.0f} tasks/s)")
    print(f"ratio plain Celery time / Patchbay time: {min(plain) / min(patchbay):.2f}")


if __name__ == "__main__":
    main()
