"""Reading executions: filtered lists and counts, kept on indexed columns so they stay fast."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select, text

from app.db import db, utcnow
from app.models import Execution

STATS_WINDOW = timedelta(hours=24)


def visible(query: Select, packs: set[str] | None) -> Select:
    """RBAC: only executions of the packs the caller may view (None = every pack)."""
    if packs is not None:
        query = query.where(Execution.pack_name.in_(sorted(packs)))
    return query


def filtered(args: dict[str, Any], packs: set[str] | None) -> Select:
    query = visible(select(Execution), packs)
    if args.get("status"):
        query = query.where(Execution.status.in_(args["status"]))
    if args.get("action"):
        query = query.where(Execution.action_ref == args["action"])
    if args.get("pack"):
        query = query.where(Execution.pack_name == args["pack"])
    if args.get("parent"):
        query = query.where(Execution.parent_id == args["parent"])
    if args.get("root"):
        # A whole tree: the root itself and every execution under it.
        query = query.where(or_(Execution.root_id == args["root"], Execution.id == args["root"]))
    if args.get("rule"):
        query = query.where(Execution.rule_ref == args["rule"])
    if args.get("enforcement"):
        query = query.where(Execution.enforcement_id == args["enforcement"])
    if args.get("user"):
        query = query.where(Execution.user == args["user"])
    if args.get("since"):
        query = query.where(Execution.created_at >= args["since"])
    if args.get("until"):
        query = query.where(Execution.created_at < args["until"])
    return query


def stats(since: datetime | None, until: datetime | None, pack: str | None, packs: set[str] | None,
          top: int) -> dict[str, Any]:
    """Counts by status and by action (top ``top`` by volume), grouped in SQL."""
    until = until or utcnow()
    since = since or until - STATS_WINDOW
    where = [Execution.created_at >= since, Execution.created_at < until]
    if pack:
        where.append(Execution.pack_name == pack)
    by_status_query = visible(select(Execution.status, func.count()).where(*where), packs).group_by(Execution.status)
    by_status = {status: count for status, count in db.session.execute(by_status_query)}
    counts = visible(
        select(Execution.action_ref, Execution.status, func.count().label("n")).where(*where), packs
    ).group_by(Execution.action_ref, Execution.status).subquery()
    totals = func.sum(counts.c.n).over(partition_by=counts.c.action_ref)
    ranked = select(counts.c.action_ref, counts.c.status, counts.c.n, totals.label("total")).subquery()
    top_actions = (
        select(ranked.c.action_ref, ranked.c.status, ranked.c.n, ranked.c.total,
               func.dense_rank().over(order_by=(ranked.c.total.desc(), ranked.c.action_ref)).label("rank"))
        .subquery()
    )
    rows = db.session.execute(
        select(top_actions.c.action_ref, top_actions.c.status, top_actions.c.n, top_actions.c.total)
        .where(top_actions.c.rank <= top)
        .order_by(top_actions.c.total.desc(), top_actions.c.action_ref, top_actions.c.status)
    )
    by_action: dict[str, dict[str, Any]] = {}
    for action_ref, status, n, total in rows:
        entry = by_action.setdefault(action_ref, {"action": action_ref, "total": int(total), "by_status": {}})
        entry["by_status"][status] = n
    return {"since": since, "until": until, "total": sum(by_status.values()), "by_status": by_status,
            "by_action": list(by_action.values())}


CHILDREN_LIMIT = 10_000  # rows one children answer holds at most (a 1,000-item workflow fits)


def children(execution_id: int, depth: int, packs: set[str] | None) -> list[tuple[Execution, int]]:
    """Descendants of ``execution_id`` down to ``depth`` levels (1 = direct children), each with
    its depth, in tree order (a parent before its children, siblings by id)."""
    rows = db.session.execute(text(
        "WITH RECURSIVE tree(id, depth, path) AS ("
        " SELECT id, 1, ARRAY[id] FROM executions WHERE parent_id = :root"
        " UNION ALL"
        " SELECT e.id, t.depth + 1, t.path || e.id FROM executions e JOIN tree t ON e.parent_id = t.id"
        " WHERE t.depth < :depth"
        ") SELECT id, depth FROM tree ORDER BY path LIMIT :limit"
    ), {"root": execution_id, "depth": depth, "limit": CHILDREN_LIMIT}).all()
    if not rows:
        return []
    found = {row.id: row.depth for row in rows}
    query = visible(select(Execution).where(Execution.id.in_(list(found))), packs)
    by_id = {execution.id: execution for execution in db.session.scalars(query)}
    return [(by_id[row.id], row.depth) for row in rows if row.id in by_id]
