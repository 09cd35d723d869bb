"""Webhook events per second through Patchbay versus plain Celery, on one broker and worker.

``python -m bench.events [-n 300] [--clients 8]`` (``make bench-events``). Its own PostgreSQL
database (``patchbay_bench_events``) and Redis db (PATCHBAY_BENCH_REDIS_DB, default 13), both
wiped first. It starts gunicorn from the Procfile's ``web:`` line (bound to 127.0.0.1 only)
and one worker from its ``worker:`` line, and declares a token webhook (``auth: token``, the
token a secret of the rule's pack config) whose rule runs ``core.noop``.

1. Throughput: N webhook POSTs over HTTP from ``--clients`` threads (keep-alive), until every
   execution they caused has ended. Rate = N / (first request → last end).
2. Latency, one event at a time (``--latency`` of them): webhook accepted (the event row's
   ``created_at``) → execution started (``started_at``), read from the rows.
3. Plain Celery: N ``send_task`` of a noop task on the same worker, then ``get()`` of each.

Every number is bounded: N requests, a deadline per phase, loopback only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import threading
import time
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

BENCH_DB = "patchbay_bench_events"
HOOK, TOKEN_HEADER = "bench/deploy", "X-Bench-Token"
TOKEN = secrets.token_urlsafe(24)
DEADLINE = 300  # seconds any phase may take before the benchmark gives up


def webhook_content() -> None:
    """The core pack from its files, a pack holding the token, a token webhook rule → core.noop."""
    from app.services.pack_loader import register_pack
    from app.services.packs import create_pack
    from app.services.rules import create_rule

    register_pack("core")
    create_pack({"name": "bench", "config_schema": {"hook_token": {"type": "string", "secret": True}},
                 "config": {"hook_token": TOKEN}})
    create_rule({"pack_name": "bench", "name": "deploy", "trigger": "core.webhook", "action": "core.noop",
                 "trigger_parameters": {"url": HOOK, "auth": "token", "secret_key": "hook_token",
                                        "token_header": TOKEN_HEADER}}, author="bench")


def post_events(port: int, count: int, clients: int) -> list[int]:
    """``count`` webhook POSTs from ``clients`` threads, each on one keep-alive connection."""
    event_ids: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()
    shares = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]

    def client(share: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(share):
            body = json.dumps({"env": "prod", "version": "1.0"})
            conn.request("POST", f"/api/v1/webhooks/{HOOK}", body=body,
                         headers={"Content-Type": "application/json", TOKEN_HEADER: TOKEN})
            response = conn.getresponse()
            answer = response.read()
            with lock:
                if response.status == 202:
                    event_ids.append(json.loads(answer)["event_id"])
                else:
                    failures.append(f"{response.status} {answer[:200]!r}")
        conn.close()

    run_clients(client, shares)
    if failures:
        raise SystemExit(f"{len(failures)} webhook POST(s) refused: {failures[:3]}")
    return event_ids


def wait_for_executions(app, event_ids: list[int], every: float = 0.02) -> list:
    """Wait until each event's execution has ended; its rows (accepted, claimed, requested, started).

    First the events (until each is processed), then the executions they caused, both with
    the harness's cursor poll: a watcher that counted every id on each poll would take the
    CPU it measures."""
    from app.db import db
    from app.models import Enforcement, Event, Execution
    from app.models.execution import TERMINAL

    events = wait_until_ended(app, Event, event_ids, frozenset({"processed", "failed"}), (Event.id, Event.status),
                              every)
    unprocessed = [row for row in events if row.status != "processed"]
    if unprocessed:
        raise SystemExit(f"{len(unprocessed)} event(s) were not processed: {unprocessed[:3]}")
    query = (select(Execution.id, Event.created_at, Event.claimed_at, Execution.created_at.label("requested_at"),
                    Execution.started_at, Execution.status)
             .join(Enforcement, Enforcement.event_id == Event.id)
             .join(Execution, Execution.enforcement_id == Enforcement.id)
             .where(Event.id.between(min(event_ids), max(event_ids))))
    with app.app_context():
        wanted = set(event_ids)
        execution_ids = [row.id for row in db.session.execute(query.add_columns(Event.id.label("event_id")))
                         if row.event_id in wanted]
        db.session.rollback()
    if len(execution_ids) != len(event_ids):
        raise SystemExit(f"{len(event_ids)} events caused {len(execution_ids)} executions, not one each")
    wait_until_ended(app, Execution, execution_ids, TERMINAL, (Execution.id,), every)
    with app.app_context():
        rows = [row for row in db.session.execute(query.add_columns(Event.id.label("event_id")))
                if row.event_id in wanted]
        db.session.rollback()
    failed = [row for row in rows if row.status != "succeeded"]
    if failed:
        raise SystemExit(f"{len(failed)} execution(s) did not succeed: {failed[:3]}")
    return rows


def latencies_ms(rows: list, since: str = "created_at", until: str = "started_at") -> list[float]:
    return [(getattr(row, until) - getattr(row, since)).total_seconds() * 1000 for row in rows]


def bench_webhooks(app, port: int, n: int, clients: int) -> tuple[float, list[float]]:
    started = time.perf_counter()
    rows = wait_for_executions(app, post_events(port, n, clients))
    return n / (time.perf_counter() - started), latencies_ms(rows)


def bench_one_at_a_time(app, port: int, n: int) -> list:
    rows = []
    for _ in range(n):
        rows += wait_for_executions(app, post_events(port, 1, 1), every=0.005)
    return rows


STAGES = (("accepted -> execution requested (the rules, in the request)", "created_at", "requested_at"),
          ("execution requested -> started (commit, publish, run_execution's claim)", "requested_at", "started_at"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="webhook events and plain tasks (default 300)")
    parser.add_argument("--clients", type=int, default=8, help="client threads posting (default 8)")
    parser.add_argument("--latency", type=int, default=100, help="events sent one at a time (default 100)")
    args = parser.parse_args()
    prepare_environment(BENCH_DB)
    app, _ = setup_app(webhook_content)
    with running_patchbay(app, "events") as port:
        bench_webhooks(app, port, min(40, args.n), args.clients)  # warm-up: imports, connections, pools
        meter = CpuMeter(port, "-A bench.worker_app", BENCH_DB, urlparse(os.environ["REDIS_URL"]).port)
        meter.start()
        rate, loaded = bench_webhooks(app, port, args.n, args.clients)
        patchbay_cpu = meter.per_item(args.n)
        alone_rows = bench_one_at_a_time(app, port, args.latency)
        meter.start()
        celery_rate, round_trips = bench_plain_celery(app, args.n)
        celery_cpu = meter.per_item(args.n)
    alone = latencies_ms(alone_rows)
    concurrency = os.environ.get("WORKER_CONCURRENCY", "2")
    print(f"N = {args.n}, {args.clients} clients; gunicorn and worker (prefork x{concurrency}) from the Procfile;"
          f" token webhook; load average {os.getloadavg()[0]:.2f}")
    print(f"Patchbay webhook events (POST -> core.noop succeeded): {rate:8.1f} events/s")
    print(f"plain Celery noop tasks (send_task -> get):           {celery_rate:8.1f} tasks/s")
    print(f"ratio Patchbay / plain Celery:                        {rate / celery_rate:8.2f}")
    print(cpu_line("CPU per event (throughput phase), ms", patchbay_cpu))
    print(cpu_line("CPU per plain Celery task, ms", celery_cpu))
    print(f"accepted -> started, one at a time ({len(alone)}): p50 {percentile(alone, 0.5):.1f} ms,"
          f" p99 {percentile(alone, 0.99):.1f} ms")
    for label, since, until in STAGES:
        part = latencies_ms(alone_rows, since, until)
        print(f"  {label}: p50 {percentile(part, 0.5):.1f} ms, p99 {percentile(part, 0.99):.1f} ms")
    print(f"accepted -> started, under load ({len(loaded)}):  p50 {percentile(loaded, 0.5):.1f} ms,"
          f" p99 {percentile(loaded, 0.99):.1f} ms")
    print(f"plain Celery round trip (one at a time): p50 {percentile(round_trips, 0.5):.1f} ms,"
          f" p99 {percentile(round_trips, 0.99):.1f} ms")


if __name__ == "__main__":
    main()
