"""Every change of an execution's status, in one place: guarded transitions.

Each is one conditional statement (``UPDATE … WHERE status IN (…) RETURNING``), so two
workers, a redelivered message, a cancel or the sweeper racing a slow worker can never both
win, and a terminal status never changes again. Functions here only ``flush``; the caller
commits (app/services/unit_of_work.py) and announces the change after the commit.

The states (docs/architecture.md)::

    requested/scheduled --claim--> running --finish--> succeeded | failed | timeout
          |                          |  \--wait(children)--> running, waiting_on=children
          |                          |  \--wait(person)----> pending, waiting_on=inquiry
          |                          |      (a wake, then claim_resume: running again)
          |                        cancel: canceling --(descendants ended)--> canceled
          +--cancel--> canceled      stale heartbeat (worker-owned only) --> abandoned

    a workflow: running --pause--> pausing --(its running tasks ended)--> paused
                pausing | paused --resume--> running (woken: it starts tasks again)
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import and_, case, func, select, text, update
from sqlalchemy.engine import Engine

from app.db import db, utcnow
from app.engine.unstorable import map_strings, replace_unstorable
from app.models import Action, Execution, Inquiry, Pack
from app.models.execution import (
    ABANDONED,
    ACTIVE,
    CANCELED,
    CANCELING,
    PAUSED,
    PAUSING,
    PENDING,
    QUEUED,
    RUNNING,
    TERMINAL,
    WAITING_ON_PERSON,
)
from app.services import unit_of_work
from app.services.rows import column_list, loaded_row

# The built-in trigger of an execution's end (app/services/execution_events.py).
EXECUTION_FINISHED = "core.execution_finished"

log = logging.getLogger("patchbay.executions")

ACTIVE_LIST = sorted(ACTIVE)
TERMINAL_LIST = sorted(TERMINAL)


def _sql_list(statuses) -> str:
    """A constant IN list (status words are fixed; never from input)."""
    return ", ".join(f"'{status}'" for status in sorted(statuses))


# The two statements every execution runs, as plain SQL: built once, no compilation per call
# (through the ORM's UPDATE … RETURNING they cost twice the time, measured in
# docs/performance.md).
#
# The claim returns the claimed row with its action and pack (what the worker loads next):
# one statement, run outside a transaction block, so the claim is committed — `running` is
# visible and a second claim fails — in one round trip instead of BEGIN, UPDATE, SELECT and
# COMMIT. It runs on the driver's cursor and its row is matched by position to the three
# tables' columns (names repeat): the ORM's processing of a 60-column row — row processors
# built anew for a textual statement on every call, a description object per column — cost
# more than the query (docs/performance.md).
_CLAIM = (
    "WITH claimed AS ("
    f"UPDATE executions SET status = '{RUNNING}', started_at = %(now)s, heartbeat_at = %(now)s,"
    " worker_host = %(host)s, task_id = COALESCE(NULLIF(%(task_id)s, ''), task_id)"
    f" WHERE id = %(id)s AND status IN ({_sql_list(QUEUED)}) RETURNING *)"
    f" SELECT {column_list(Execution, 'claimed')}, {column_list(Action, 'actions')}, {column_list(Pack, 'packs')}"
    " FROM claimed LEFT JOIN actions ON actions.id = claimed.action_id LEFT JOIN packs ON packs.id = actions.pack_id"
)
_SPLIT = (len(Execution.__table__.columns), len(Execution.__table__.columns) + len(Action.__table__.columns))


def claim(execution_id: int, worker_host: str, task_id: str | None) -> tuple[Execution, Action | None,
                                                                              Pack | None] | None:
    """``requested|scheduled → running`` if nobody else did: (the execution, its action, its
    pack — None if the action was deleted meanwhile), the session's objects; None otherwise.

    Unlike the other transitions this one is committed when it returns: at the start of a
    session's transaction it runs in autocommit mode (inside an open transaction, as tests
    may call it, it joins that transaction and the caller's commit makes it visible).
    """
    row = unit_of_work.statement_row(_CLAIM, {"id": execution_id, "now": utcnow(), "host": worker_host[:255],
                                              "task_id": (task_id or "")[:64]}, alone=True)
    if row is None:
        return None
    action = loaded_row(Action, row[_SPLIT[0]:_SPLIT[1]])
    return (loaded_row(Execution, row[:_SPLIT[0]]), action,
            loaded_row(Pack, row[_SPLIT[1]:]) if action is not None else None)


def heartbeat(engine: Engine, execution_id: int) -> str | None:
    """Prove the worker is alive; return the status (None if the execution is no longer ours).

    Runs in the heartbeat thread, on its own connection, outside the task's session.
    """
    with engine.begin() as conn:
        row = conn.execute(
            update(Execution)
            .where(Execution.id == execution_id, Execution.status.in_(ACTIVE_LIST),
                   Execution.waiting_on.is_(None))
            .values(heartbeat_at=func.now())
            .returning(Execution.status)
        ).first()
    return row.status if row else None


_FINISH = (
    f"UPDATE executions SET status = CASE WHEN status = '{CANCELING}' THEN '{CANCELED}' ELSE %(status)s END,"
    " result = %(result)s, error = %(error)s, finished_at = %(now)s, log_truncated = %(truncated)s"
    f" WHERE id = %(id)s AND status IN ({_sql_list(ACTIVE)}) AND waiting_on IS NULL"
    " RETURNING status, EXISTS (SELECT 1 FROM rules JOIN triggers ON triggers.id = rules.trigger_id"
    f" WHERE triggers.ref = '{EXECUTION_FINISHED}' AND rules.enabled)"
)


def finish(execution_id: int, status: str, result: dict[str, Any] | None, error: str | None,
           log_truncated: bool, *, alone: bool = False) -> tuple[str, bool] | None:
    """Write the end: the final status, and whether an enabled rule listens for
    ``core.execution_finished`` (asked in the same statement, saving a round trip on every
    end); None if the execution had already ended (e.g. abandoned by the sweeper).

    In the session's transaction (flush only), or ``alone`` — committed as it runs — when it
    is the end's only write (unit_of_work.statement_row). A canceled execution stays
    canceled whatever its runner reported: cancel is authoritative.
    """
    row = unit_of_work.statement_row(_FINISH, {
        "id": execution_id, "status": status, "result": Jsonb(map_strings(result, replace_unstorable)),
        "error": map_strings(error, replace_unstorable), "now": utcnow(), "truncated": log_truncated,
    }, alone=alone)
    return (row[0], row[1]) if row else None


def requested_parameters(execution: Execution) -> dict[str, Any]:
    """The parameters as requested, before the worker rendered them (see tasks/container.py)."""
    requested = (execution.context or {}).get("requested_parameters")
    return requested if isinstance(requested, dict) else dict(execution.parameters or {})


def stale_active(abandon_after: int, limit: int = 500) -> list[Execution]:
    cutoff = utcnow() - timedelta(seconds=abandon_after)
    return list(db.session.scalars(
        select(Execution)
        # Only what a worker owns: a waiting execution has no worker to stop beating.
        .where(Execution.status.in_(ACTIVE_LIST), Execution.waiting_on.is_(None), Execution.heartbeat_at < cutoff)
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
        .where(Execution.id == execution.id, Execution.status.in_(ACTIVE_LIST), Execution.waiting_on.is_(None),
               Execution.heartbeat_at < cutoff)
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


# --- Executions that wait -------------------------------------------------------------------

def wait(execution_id: int, on: str, seen_wakeups: int, context: dict[str, Any] | None = None) -> str | None:
    """The runner released its worker: wait on ``on`` (children, or a person: ``pending``).

    Returns the status it waits in (``canceling`` if a cancel arrived while the runner
    worked: the caller applies it to what the runner just started). Refused (None) when a
    wake arrived since the runner looked (``wakeups`` moved past ``seen_wakeups``): the caller
    resumes at once instead, so no wake is lost; also refused if the execution is no longer
    this worker's. ``context`` (with the runner's state for the resume) replaces the
    execution's when given.
    """
    child = Execution.__table__.alias("child")
    # Nothing of it runs: its children have ended or are paused workflows themselves.
    idle = ~select(child.c.id).where(child.c.parent_id == Execution.id,
                                     child.c.status.not_in([*TERMINAL_LIST, PAUSED])).exists()
    values: dict[str, Any] = {
        "waiting_on": on, "waited_wakeups": seen_wakeups, "heartbeat_at": utcnow(),
        # A pausing workflow whose tasks have all ended is paused.
        "status": case((Execution.status == RUNNING, PENDING), else_=Execution.status)
        if on == WAITING_ON_PERSON else case((and_(Execution.status == PAUSING, idle), PAUSED),
                                             else_=Execution.status),
    }
    if context is not None:
        values["context"] = context
    return db.session.scalar(
        update(Execution)
        .where(Execution.id == execution_id, Execution.status.in_(ACTIVE_LIST),
               Execution.waiting_on.is_(None), Execution.wakeups == seen_wakeups)
        .values(**values).returning(Execution.status)
    )


def claim_resume(execution_id: int, worker_host: str) -> Execution | None:
    """A waiting execution that was woken goes back to a worker (``pending`` → ``running``).

    None if it is not waiting, or nothing woke it since it began to wait (a duplicate or
    stale resume message).
    """
    return db.session.scalars(
        update(Execution)
        .where(Execution.id == execution_id, Execution.waiting_on.is_not(None),
               Execution.wakeups > Execution.waited_wakeups,
               Execution.status.in_(sorted(ACTIVE | {PENDING})))
        .values(waiting_on=None, heartbeat_at=utcnow(), worker_host=worker_host[:255],
                status=case((Execution.status == PENDING, RUNNING), else_=Execution.status))
        .returning(Execution),
        execution_options={"populate_existing": True},
    ).first()


def wake(execution_ids: list[int]) -> list[int]:
    """Count a wake for each execution that has not ended; return those now waiting (each
    needs a resume message after the commit; the others see the wake when they next wait)."""
    if not execution_ids:
        return []
    rows = db.session.execute(
        update(Execution)
        .where(Execution.id.in_(sorted(set(execution_ids))), Execution.status.not_in(TERMINAL_LIST))
        .values(wakeups=Execution.wakeups + 1, woken_at=utcnow())
        .returning(Execution.id, Execution.waiting_on)
    ).all()
    return sorted(row.id for row in rows if row.waiting_on is not None)


def parents_of(execution_ids: list[int]) -> list[int]:
    """The parents of these executions, other than themselves (whom their ends must wake)."""
    if not execution_ids:
        return []
    parents = db.session.scalars(
        select(Execution.parent_id).where(Execution.id.in_(execution_ids), Execution.parent_id.is_not(None))
    ).all()
    return [parent for parent in parents if parent not in execution_ids]


def active_children(execution_id: int) -> int:
    """How many children have not ended (a parent ends only when this is 0)."""
    return db.session.scalar(
        select(func.count()).select_from(Execution)
        .where(Execution.parent_id == execution_id, Execution.status.not_in(TERMINAL_LIST))
    ) or 0


def woken_not_resumed(requeue_after: int, limit: int = 500) -> list[int]:
    """Waiting executions whose resume message seems lost, or whose children all ended
    without waking them: the sweeper wakes and resumes them."""
    cutoff = utcnow() - timedelta(seconds=requeue_after)
    woken = select(Execution.id).where(
        Execution.waiting_on.is_not(None), Execution.wakeups > Execution.waited_wakeups,
        Execution.woken_at < cutoff, Execution.status != PAUSED)
    child = Execution.__table__.alias("child")
    idle = select(Execution.id).where(
        Execution.waiting_on == "children", Execution.wakeups == Execution.waited_wakeups,
        Execution.status != PAUSED,
        Execution.heartbeat_at < cutoff,
        ~select(child.c.id).where(child.c.parent_id == Execution.id,
                                  child.c.status.not_in(TERMINAL_LIST)).exists())
    found = set(db.session.scalars(woken.limit(limit)).all())
    stuck = set(db.session.scalars(idle.limit(limit)).all())
    if stuck:
        wake(sorted(stuck))
    return sorted(found | stuck)


# --- Cancel ----------------------------------------------------------------------------------

@dataclass
class Canceled:
    """What a cancel changed; the caller announces it after the commit."""

    ended: list[int] = field(default_factory=list)          # now canceled (queued, waiting, pending)
    revoke: list[str] = field(default_factory=list)         # their Celery task ids (never to start)
    signal: list[tuple[int, str | None]] = field(default_factory=list)  # running in a worker: kill


def subtree(execution_id: int) -> list[int]:
    """The execution and every descendant that has not ended (a recursive walk over
    ``parent_id``; an ended execution has no live descendant, so the walk stops there)."""
    return list(db.session.scalars(text(
        "WITH RECURSIVE tree(id) AS ("
        " SELECT id FROM executions WHERE id = :root"
        " UNION ALL"
        " SELECT e.id FROM executions e JOIN tree t ON e.parent_id = t.id"
        " WHERE e.status <> ALL(:terminal)"
        ") SELECT id FROM tree"
    ), {"root": execution_id, "terminal": TERMINAL_LIST}))


def cancel_tree(execution_id: int) -> Canceled:
    """Cancel an execution and all its descendants (flush only).

    Queued and person-waiting ones end ``canceled`` at once (their inquiries too); ones a
    worker runs become ``canceling`` (the caller signals their workers to kill the process
    trees); ones waiting on children become ``canceling`` and end ``canceled`` as soon as no
    descendant is left — here, bottom up, when none runs, otherwise when the last one ends
    and wakes them.
    """
    ids = subtree(execution_id)
    outcome = Canceled()
    now = utcnow()
    queued = db.session.execute(
        update(Execution)
        .where(Execution.id.in_(ids), Execution.status.in_(sorted(QUEUED | {PENDING})))
        .values(status=CANCELED, finished_at=now, waiting_on=None)
        .returning(Execution.id, Execution.task_id)
    ).all()
    outcome.ended += [row.id for row in queued]
    outcome.revoke += [row.task_id for row in queued if row.task_id]
    running = db.session.execute(
        update(Execution)
        .where(Execution.id.in_(ids), Execution.status.in_([RUNNING, PAUSING, PAUSED]))
        .values(status=CANCELING)
        .returning(Execution.id, Execution.task_id, Execution.waiting_on)
    ).all()
    outcome.signal += [(row.id, row.task_id) for row in running if row.waiting_on is None]
    # Waiting parents whose descendants have all ended: canceled now, deepest first.
    outcome.ended += _settle_idle(ids, CANCELING, TERMINAL_LIST,
                                  {"status": CANCELED, "finished_at": now, "waiting_on": None})
    if outcome.ended:
        db.session.execute(update(Inquiry).where(Inquiry.execution_id.in_(outcome.ended), Inquiry.status == "pending")
                           .values(status="canceled"))
    return outcome



# --- Pause and resume (workflows) --------------------------------------------------------

def pause_tree(execution_id: int, workflow_runners: list[str]) -> list[int]:
    """Pause a workflow and the workflows under it (flush only): ``running → pausing``; those
    whose tasks have all ended (waiting, nothing of theirs runs) are ``paused`` at once. A
    pausing workflow starts no task; it becomes paused when it next waits with nothing left
    running (``wait``). Returns the ids now pausing or paused; [] if none was running."""
    ids = subtree(execution_id)
    changed = list(db.session.scalars(
        update(Execution)
        .where(Execution.id.in_(ids), Execution.status == RUNNING, Execution.runner_type.in_(workflow_runners))
        .values(status=PAUSING).returning(Execution.id)
    ))
    # A parent is idle once its paused child workflows are (paused is not ended, but nothing
    # of it runs): only children that still run something count.
    _settle_idle(changed, PAUSING, [*TERMINAL_LIST, PAUSED], {"status": PAUSED})
    return changed


def _settle_idle(ids: list[int], status: str, settled: list[str], values: dict[str, Any]) -> list[int]:
    """Deepest first, until none moves: give ``values`` to each execution of ``ids`` that is
    ``status``, waiting on its children, with no child outside ``settled``. Returns those moved."""
    child = Execution.__table__.alias("child")
    moved: list[int] = []
    while True:
        done = db.session.scalars(
            update(Execution)
            .where(Execution.id.in_(ids), Execution.status == status, Execution.waiting_on.is_not(None),
                   ~select(child.c.id).where(child.c.parent_id == Execution.id,
                                             child.c.status.not_in(settled)).exists())
            .values(**values).returning(Execution.id)
        ).all()
        if not done:
            return moved
        moved += done


def resume_tree(execution_id: int) -> list[int]:
    """``pausing | paused → running`` for a workflow and those under it (flush only); the
    caller wakes the returned ones so they start their next tasks."""
    ids = subtree(execution_id)
    return list(db.session.scalars(
        update(Execution)
        .where(Execution.id.in_(ids), Execution.status.in_([PAUSING, PAUSED]))
        .values(status=RUNNING).returning(Execution.id)
    ))
