"""Executions per second through Patchbay versus plain Celery, on one broker and worker.

``python -m bench.executions [-n 300] [--clients 8] [--latency 100] [--auth apikey|token]``
(``make bench``). Its own PostgreSQL database (``patchbay_bench``) and Redis db
(PATCHBAY_BENCH_REDIS_DB, default 13), both wiped first, on the services the test suite uses.
It starts Patchbay as the Procfile does: gunicorn from its ``web:`` line (bound to 127.0.0.1
only) and one worker from its ``worker:`` line (with ``-A bench.worker_app``), and calls it as
users do, over HTTP with an API key (or a bearer token).

1. Throughput: N ``POST /api/v1/actions/core.noop/execute`` from ``--clients`` threads, each on
   one keep-alive connection, until every execution has succeeded.
   Rate = N / (first request → last execution ended); the rate at which the POSTs were
   answered is printed too (the web side's share).
2. Plain Celery: N ``send_task`` of a noop task on the same worker, then ``get()`` of each.
3. Latency, one execution at a time (``--latency`` of them, ``--gap`` s apart once the
   previous has ended): the row's ``created_at`` → ``started_at`` (the worker's claim), and as
   the client sees it: request sent → started, and the HTTP answer's round trip.

The last line printed is the ratio Patchbay / plain Celery. Every number is bounded: N
requests, a deadline per phase, loopback only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlparse

from sqlalchemy import select

from bench.environment import prepare_environment
from bench.harness import (
    CpuMeter,
    bench_plain_celery,
    cpu_line,
    percentile,
    run_clients,
    running_patchbay,
    setup_app,
    wait_until_ended,
)

BENCH_DB = "patchbay_bench"
EXECUTE = "/api/v1/actions/core.noop/execute"
DEADLINE = 300  # seconds any phase may take before the benchmark gives up


@dataclass(frozen=True)
class Sent:
    execution_id: int
    sent_at: float  # wall clock, comparable with the rows' timestamps (same host)
    round_trip_ms: float


class Client:
    """One keep-alive connection to gunicorn, calling execute with the bench's credentials."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Content-Type": "application/json", **headers}

    def execute(self) -> Sent:
        sent_at, begin = time.time(), time.perf_counter()
        self.conn.request("POST", EXECUTE, body=json.dumps({"parameters": {}}), headers=self.headers)
        response = self.conn.getresponse()
        answer = response.read()
        round_trip = (time.perf_counter() - begin) * 1000
        if response.status != 201:
            raise RuntimeError(f"execute answered {response.status}: {answer[:200]!r}")
        return Sent(json.loads(answer)["id"], sent_at, round_trip)

    def close(self) -> None:
        self.conn.close()


def bench_credentials(app, auth: str, token_headers: dict[str, str]) -> dict[str, str]:
    """An API key of the bench identity (as a machine calls), or its bearer token."""
    if auth == "token":
        return token_headers
    from app.db import db
    from app.models import ApiKey, Identity
    from app.security.authenticate import API_KEY_HEADER, new_api_key

    with app.app_context():
        owner = db.session.scalar(select(Identity).where(Identity.name == "bench"))
        full, prefix, key_hash = new_api_key()
        db.session.add(ApiKey(identity_id=owner.id, name="bench", prefix=prefix, key_hash=key_hash))
        db.session.commit()
    return {API_KEY_HEADER: full}


def post_executions(port: int, headers: dict[str, str], count: int, clients: int) -> list[Sent]:
    """``count`` execute calls from ``clients`` threads, each on one keep-alive connection."""
    sent: list[Sent] = []
    failures: list[str] = []
    lock = threading.Lock()
    shares = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]

    def call(share: int) -> None:
        client = Client(port, headers)
        try:
            for _ in range(share):
                one = client.execute()
                with lock:
                    sent.append(one)
        except (OSError, RuntimeError) as exc:
            with lock:
                failures.append(str(exc))
        finally:
            client.close()

    run_clients(call, shares)
    if failures:
        raise SystemExit(f"{len(failures)} client(s) failed: {failures[:3]}")
    return sent


def wait_for_executions(app, ids: list[int], every: float = 0.02) -> list:
    """Wait until every execution in ``ids`` has ended; their rows (created, started, status)."""
    from app.models import Execution
    from app.models.execution import TERMINAL

    rows = wait_until_ended(app, Execution, ids, TERMINAL, (Execution.id, Execution.created_at, Execution.started_at,
                                                  Execution.status), every)
    failed = [row for row in rows if row.status != "succeeded"]
    if failed:
        raise SystemExit(f"{len(failed)} execution(s) did not succeed: {failed[:3]}")
    return rows


def bench_patchbay(app, port: int, headers: dict[str, str], n: int, clients: int) -> tuple[float, float]:
    """(executions ended per second, execute calls answered per second: the web side alone)."""
    started = time.perf_counter()
    sent = post_executions(port, headers, n, clients)
    answered = time.perf_counter()
    wait_for_executions(app, [one.execution_id for one in sent])
    return n / (time.perf_counter() - started), n / (answered - started)


def bench_one_at_a_time(app, port: int, headers: dict[str, str], n: int, gap: float) -> dict[str, list[float]]:
    """Each execution sent ``gap`` s after the previous has ended: server- and client-side latencies."""
    client = Client(port, headers)
    figures: dict[str, list[float]] = {"created -> started": [], "sent -> started": [], "round trip": []}
    try:
        for _ in range(n):
            sent = client.execute()
            (row,) = wait_for_executions(app, [sent.execution_id], every=0.002)
            figures["created -> started"].append((row.started_at - row.created_at).total_seconds() * 1000)
            figures["sent -> started"].append((row.started_at.timestamp() - sent.sent_at) * 1000)
            figures["round trip"].append(sent.round_trip_ms)
            # The row turns terminal before the worker has stored the result and sent its
            # events; without a pause the next request would be measured against that tail.
            time.sleep(gap)
    finally:
        client.close()
    return figures


def p50_p99(values: list[float]) -> str:
    return f"p50 {percentile(values, 0.5):.1f} ms, p99 {percentile(values, 0.99):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="executions and plain tasks (default 300)")
    parser.add_argument("--clients", type=int, default=8, help="client threads posting (default 8)")
    parser.add_argument("--latency", type=int, default=100, help="executions sent one at a time (default 100)")
    parser.add_argument("--gap", type=float, default=0.05,
                        help="seconds between one-at-a-time executions (default 0.05)")
    parser.add_argument("--auth", choices=("apikey", "token"), default="apikey",
                        help="X-API-Key (default) or a bearer token")
    args = parser.parse_args()
    prepare_environment(BENCH_DB)
    app, token_headers = setup_app()
    headers = bench_credentials(app, args.auth, token_headers)
    load_before = os.getloadavg()[0]
    with running_patchbay(app, "executions") as port:
        bench_patchbay(app, port, headers, min(40, args.n), args.clients)  # warm-up: imports, pools, caches
        meter = CpuMeter(port, "-A bench.worker_app", BENCH_DB, urlparse(os.environ["REDIS_URL"]).port)
        meter.start()
        rate, answered_rate = bench_patchbay(app, port, headers, args.n, args.clients)
        patchbay_cpu = meter.per_item(args.n)
        meter.start()
        celery_rate, round_trips = bench_plain_celery(app, args.n)
        celery_cpu = meter.per_item(args.n)
        alone = bench_one_at_a_time(app, port, headers, args.latency, args.gap)
    concurrency = os.environ.get("WORKER_CONCURRENCY", "2")
    print(f"N = {args.n}, {args.clients} clients, {'X-API-Key' if args.auth == 'apikey' else 'bearer token'};"
          f" gunicorn and worker (prefork x{concurrency}) from the Procfile;"
          f" load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"Patchbay executions (POST execute over HTTP -> succeeded): {rate:8.1f} executions/s"
          f" (the {args.n} POSTs answered at {answered_rate:.1f}/s)")
    print(f"plain Celery noop tasks (send_task -> get):                {celery_rate:8.1f} tasks/s")
    print(f"one at a time ({args.latency}): request -> started (created_at -> started_at):"
          f" {p50_p99(alone['created -> started'])}")
    print(f"  as the client sees it: POST sent -> started {p50_p99(alone['sent -> started'])};"
          f" POST answered {p50_p99(alone['round trip'])}")
    print(f"plain Celery round trip (one at a time): {p50_p99(round_trips)}")
    print(cpu_line("CPU per execution (throughput phase), ms", patchbay_cpu))
    print(cpu_line("CPU per plain Celery task, ms", celery_cpu))
    print(f"ratio Patchbay / plain Celery: {rate / celery_rate:.2f}")


if __name__ == "__main__":
    main()
