"""The worker side of an execution's life: claim, heartbeat, finish, retry, sweep.

Every transition is a conditional UPDATE (``WHERE status IN (...) RETURNING``), so two
workers, a redelivered message or the sweeper racing a slow worker can never both win, and a
terminal status never changes again.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.engine import Engine

from app.db import db, utcnow
from app.engine.unstorable import map_strings, replace_unstorable
from app.models import Action, Execution
from app.models.execution import (
    ABANDONED,
    CANCELED,
    CANCELING,
    QUEUED,
    REQUESTED,
    RUNNING,
    SCHEDULED,
)
from app.services import vault

log = logging.getLogger("patchbay.executions")

ACTIVE = (RUNNING, CANCELING)


def claim(execution_id: int, worker_host: str, task_id: str | None) -> Execution | None:
    """``requested|scheduled → running`` if nobody else did; None otherwise (flush only)."""
    now = utcnow()
    return db.session.scalars(
        update(Execution)
        .where(Execution.id == execution_id, Execution.status.in_(sorted(QUEUED)))
        .values(status=RUNNING, started_at=now, heartbeat_at=now, worker_host=worker_host[:255],
                task_id=(task_id or "")[:64] or Execution.task_id)
        .returning(Execution),
        execution_options={"populate_existing": True},
    ).first()


def heartbeat(engine: Engine, execution_id: int) -> str | None:
    """Prove the worker is alive; return the status (None if the execution is no longer ours).

    Runs in the heartbeat thread, on its own connection, outside the task's session.
    """
    with engine.begin() as conn:
        row = conn.execute(
            update(Execution)
            .where(Execution.id == execution_id, Execution.status.in_(ACTIVE))
            .values(heartbeat_at=func.now())
            .returning(Execution.status)
        ).first()
    return row.status if row else None


def finish(execution_id: int, status: str, result: dict[str, Any] | None, error: str | None,
           log_truncated: bool) -> str | None:
    """Write the end (flush only) and return the final status; None if the execution had
    already ended (e.g. abandoned by the sweeper).

    A canceled execution stays canceled whatever its runner reported: cancel is authoritative.
    """
    final = case((Execution.status == CANCELING, CANCELED), else_=status)
    return db.session.scalar(
        update(Execution)
        .where(Execution.id == execution_id, Execution.status.in_(ACTIVE))
        .values(status=final, result=map_strings(result, replace_unstorable),
                error=map_strings(error, replace_unstorable), finished_at=utcnow(),
                log_truncated=log_truncated)
        .returning(Execution.status)
    )


def retry_policy(action: Action | None) -> dict[str, Any]:
    retry = (action.retry if action else None) or {}
    return {"retries": int(retry.get("retries", 0)), "delay": float(retry.get("delay", 0)),
            "on": list(retry.get("on", ["failed"]))}


def create_retry(execution: Execution, status: str, policy: dict[str, Any] | None = None) -> Execution | None:
    """A new attempt row if the action's retry policy covers ``status`` (flush only).

    The retry is a new execution (attempt + 1, ``rerun_of`` the failed one, context
    ``retry_of``) so each attempt keeps its own logs, timings and result. ``policy`` saves
    loading the action when the caller has it.
    """
    if policy is None:
        action = db.session.get(Action, execution.action_id) if execution.action_id else None
        policy = retry_policy(action)
    if status not in policy["on"] or execution.attempt > policy["retries"] or not execution.action_id:
        return None
    now = utcnow()
    delay = policy["delay"]
    retry = Execution(
        action_id=execution.action_id, action_ref=execution.action_ref, pack_name=execution.pack_name,
        runner_type=execution.runner_type, parameters=dict(requested_parameters(execution)),
        status=SCHEDULED if delay else REQUESTED, user=execution.user, rule_ref=execution.rule_ref,
        enforcement_id=execution.enforcement_id, parent_id=execution.parent_id,
        root_id=execution.root_id, task_name=execution.task_name,
        context={**(execution.context or {}), "retry_of": execution.id},
        timeout=execution.timeout, attempt=execution.attempt + 1, rerun_of=execution.id,
        task_id=uuid.uuid4().hex, request_id=execution.request_id,
        created_at=now, scheduled_at=now + timedelta(seconds=delay),
    )
    db.session.add(retry)
    db.session.flush()
    secrets = vault.read_secret(vault.execution_secret_path(execution.id))
    if secrets:
        vault.write_secret(vault.execution_secret_path(retry.id), secrets)
    return retry


def requested_parameters(execution: Execution) -> dict[str, Any]:
    """The parameters as requested, before the worker rendered them (see tasks/executions.py)."""
    requested = (execution.context or {}).get("requested_parameters")
    return requested if isinstance(requested, dict) else dict(execution.parameters or {})


def stale_active(abandon_after: int, limit: int = 500) -> list[Execution]:
    cutoff = utcnow() - timedelta(seconds=abandon_after)
    return list(db.session.scalars(
        select(Execution)
        .where(Execution.status.in_(ACTIVE), Execution.heartbeat_at < cutoff)
        .order_by(Execution.heartbeat_at)
        .limit(limit)
    ))


def abandon(execution: Execution, abandon_after: int, log_truncated: bool) -> str | None:
    """End an execution whose worker stopped beating: ``abandoned`` (``canceled`` if a cancel
    was already asked). None if it moved on meanwhile. Flush only."""
    cutoff = utcnow() - timedelta(seconds=abandon_after)
    status = CANCELED if execution.status == CANCELING else ABANDONED
    ended = db.session.execute(
        update(Execution)
        .where(Execution.id == execution.id, Execution.status.in_(ACTIVE), Execution.heartbeat_at < cutoff)
        .values(status=status, finished_at=utcnow(), log_truncated=log_truncated,
                error=f"The worker stopped reporting (no heartbeat for {abandon_after} s).")
        .returning(Execution.id)
    ).first()
    return status if ended else None


def lost_queued(requeue_after: int, limit: int = 500) -> list[Execution]:
    """Queued rows whose message was sent longer than ``requeue_after`` ago."""
    cutoff = utcnow() - timedelta(seconds=requeue_after)
    return list(db.session.scalars(
        select(Execution)
        .where(Execution.status.in_(sorted(QUEUED)), Execution.scheduled_at < cutoff)
        .order_by(Execution.scheduled_at)
        .limit(limit)
    ))


def mark_requeued(execution: Execution) -> bool:
    """New task id and send time, if still queued (flush only)."""
    task_id = uuid.uuid4().hex
    done = db.session.execute(
        update(Execution)
        .where(Execution.id == execution.id, Execution.status.in_(sorted(QUEUED)))
        .values(task_id=task_id, scheduled_at=utcnow())
        .returning(Execution.id)
    ).first()
    if done:
        execution.task_id = task_id
    return done is not None
