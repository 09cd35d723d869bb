"""List endpoints at millions of rows, against a baseline measured in the same run.

``python -m bench.lists [--executions 2000000] [--audit 1000000]`` (``make bench-lists``).
It seeds its own database (``patchbay_bench_lists``) with generate_series, ANALYZEs it, then
times each list query through the Flask test client (authentication, RBAC, validation,
the capped count and the page) and prints p50/p95 and the ratio of each p50 to the baseline:
``GET /api/v1/auth/me`` — an authenticated request that reads no list — measured in the same
run. It also prints whether PostgreSQL's plan for the page query used an index.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import psycopg
from sqlalchemy import text

from bench.environment import prepare_environment

BENCH_DB = "patchbay_bench_lists"
PACKS, ACTIONS_PER_PACK, USERS = 20, 25, 50
STATUSES = ["succeeded"] * 14 + ["failed"] * 3 + ["timeout", "canceled", "abandoned", "running", "requested"]

QUERIES = [
    ("executions, newest first", "/api/v1/executions"),
    ("executions, oldest first", "/api/v1/executions?sort=created_at"),
    ("executions, page 50", "/api/v1/executions?page=50&page_size=100"),
    ("executions by status", "/api/v1/executions?status=failed"),
    ("executions by rare status", "/api/v1/executions?status=requested"),
    ("executions by action", "/api/v1/executions?action=pack7.action3"),
    ("executions by pack", "/api/v1/executions?pack=pack3"),
    ("executions by user", "/api/v1/executions?user=user9"),
    ("executions in one hour", "/api/v1/executions?since={hour_ago}"),
    ("executions by parent", "/api/v1/executions?parent=12345"),
    ("execution stats, 24 h", "/api/v1/executions/stats"),
    ("audit, newest first", "/api/v1/audit"),
    ("audit by actor", "/api/v1/audit?actor=user7"),
    ("audit by resource type", "/api/v1/audit?resource_type=rules"),
    ("actions", "/api/v1/actions"),
    ("actions by name search", "/api/v1/actions?q=action2"),
    ("rules by pack", "/api/v1/rules?pack=pack4"),
]


def seed(dsn: str, executions: int, audit: int) -> None:
    statuses = "ARRAY[" + ",".join(f"'{s}'" for s in STATUSES) + "]"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"""
            INSERT INTO packs (name, version, description, author, email, keywords, config_schema, config)
            SELECT 'pack' || p, '1.0.0', '', '', '', '[]', '{{}}', '{{}}' FROM generate_series(1, {PACKS}) p;
            INSERT INTO actions (name, ref, pack_name, pack_id, description, tags, enabled, runner_type,
                                 entry_point, parameters, output_schema, retry)
            SELECT 'action' || a, 'pack' || p.id || '.action' || a, p.name, p.id, '', '[]', true, 'noop',
                   '', '{{}}', '{{}}', '{{}}'
            FROM packs p, generate_series(1, {ACTIONS_PER_PACK}) a;
            INSERT INTO triggers (name, ref, pack_name, pack_id, description, tags, parameters_schema, payload_schema)
            SELECT 'hook', name || '.hook', name, id, '', '[]', '{{}}', '{{}}' FROM packs;
            INSERT INTO rules (name, ref, pack_name, pack_id, description, tags, enabled, trigger_id,
                               trigger_parameters, criteria, action_id, action_parameters)
            SELECT 'rule' || a.id, a.pack_name || '.rule' || a.id, a.pack_name, a.pack_id, '', '[]', true,
                   t.id, '{{}}', '{{}}', a.id, '{{}}'
            FROM actions a JOIN triggers t ON t.pack_id = a.pack_id;
        """)
        started = time.perf_counter()
        conn.execute(f"""
            INSERT INTO executions (action_ref, pack_name, runner_type, parameters, status, context,
                                    attempt, log_truncated, "user", parent_id, created_at)
            SELECT 'pack' || (1 + i % {PACKS}) || '.action' || (1 + (i / {PACKS}) % {ACTIONS_PER_PACK}),
                   'pack' || (1 + i % {PACKS}), 'noop', '{{}}',
                   ({statuses})[1 + (i * 7919) % {len(STATUSES)}], '{{}}', 1, false,
                   'user' || (1 + (i * 31) % {USERS}),
                   CASE WHEN i % 100 = 0 AND i > 1000 THEN i / 100 END,
                   now() - make_interval(secs => ({executions} - i) * 1.3)
            FROM generate_series(1::bigint, {executions}) i;
        """)
        conn.execute(f"""
            INSERT INTO audit_log (created_at, actor, action, resource_type, resource_ref, outcome,
                                   status_code, details)
            SELECT now() - make_interval(secs => ({audit} - i) * 2.6), 'user' || (1 + i % {USERS}),
                   'update', (ARRAY['actions','rules','executions','packs'])[1 + i % 4],
                   'pack1.rule' || i, 'success', 200, '{{}}'
            FROM generate_series(1::bigint, {audit}) i;
        """)
        conn.execute("ANALYZE")
        print(f"seeded {executions:,} executions and {audit:,} audit entries in {time.perf_counter() - started:.0f} s")


def plan_uses_index(dsn: str, app, url: str) -> str:
    """EXPLAIN the page query the endpoint runs (captured with SQLAlchemy's events)."""
    from sqlalchemy import event

    from app.db import db

    captured: list[tuple[str, object]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "LIMIT" in statement and "count(" not in statement:
            captured.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        app.test_client().get(url, headers=app.bench_headers)
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    if not captured:
        return "-"
    statement, parameters = captured[-1]
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
    plan = " ".join(r[0] for r in rows)
    return "index" if "Index" in plan and "Seq Scan" not in plan else "SEQ SCAN"


def timed(client, url: str, headers: dict, repeat: int) -> list[float]:
    for _ in range(2):
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.status_code, response.get_data(as_text=True)[:300])
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=2_000_000)
    parser.add_argument("--audit", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    dsn = prepare_environment(BENCH_DB)
    from app import create_app
    from app.migrate import upgrade

    upgrade(os.environ["DATABASE_URL"])
    seed(dsn, args.executions, args.audit)
    app = create_app()
    with app.app_context():
        from app.db import db
        from app.models import Identity
        from app.security.tokens import issue_tokens
        from app.services.rbac import assign_role, ensure_builtin_roles

        roles = ensure_builtin_roles()
        admin = Identity(name="bench-admin", kind="user", enabled=True)
        db.session.add(admin)
        db.session.flush()
        assign_role(admin, roles["admin"])
        db.session.commit()
        with app.test_request_context():
            token = issue_tokens(admin.id)["access_token"]
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    app.bench_headers = headers
    client = app.test_client()
    hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))

    with app.app_context():
        baseline = timed(client, "/api/v1/auth/me", headers, args.repeat)
        base_p50 = statistics.median(baseline)
        print(f"\nbaseline GET /api/v1/auth/me: p50 {base_p50:.1f} ms\n")
        print(f"{'query':32} {'p50 ms':>8} {'p95 ms':>8} {'× base':>7}  plan")
        for name, url in QUERIES:
            url = url.format(hour_ago=hour_ago)
            times = sorted(timed(client, url, headers, args.repeat))
            p50, p95 = statistics.median(times), times[int(len(times) * 0.95) - 1]
            print(f"{name:32} {p50:8.1f} {p95:8.1f} {p50 / base_p50:7.1f}  {plan_uses_index(dsn, app, url)}")


if __name__ == "__main__":
    main()
