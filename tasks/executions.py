"""The Celery tasks of an execution: thin shells over the container (tasks/container.py).

``run_execution(id)`` starts a queued execution; ``resume_execution(id)`` goes on with a
waiting one that something woke. The messages carry the execution id only: parameters come
from the row, secret values from Vault.

The Celery task ends as the execution did, so Flower tells the truth: ``succeeded`` (and
``waiting``: the worker's part is done until something wakes it) is SUCCESS,
``failed``/``timeout``/``abandoned`` raise ``ExecutionFailed`` (FAILURE, never retried, the
message acknowledged), ``canceled`` is REVOKED. Each is set only after the end is committed.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import ChordError, Ignore
from sqlalchemy import select

from app.db import db
from app.logging import add_filter_once, execution_id_var, lowered, request_id_var
from app.models import Execution
from app.models.execution import CANCELED
from app.services import executions, queue
from tasks.container import FAILURE_STATUSES, ExecutionContainer, Outcome

log = logging.getLogger("patchbay.executions")

REASON_MAX = 300  # characters of the error shown in Flower


class ExecutionFailed(Exception):
    """The execution ended failed, timeout or abandoned (already recorded and committed)."""


# ``throws``: an expected end, logged without a traceback; Celery retries nothing here, and a
# failure is acknowledged (reject_on_worker_lost requeues only when the worker itself died).
@shared_task(name=queue.RUN_EXECUTION, bind=True, acks_late=True, reject_on_worker_lost=True,
             throws=(ExecutionFailed,))
def run_execution(self, execution_id: int) -> dict[str, Any]:
    container = ExecutionContainer(execution_id, self.request.hostname, self.request.id)
    return _end_task_as(self, _within_logs_of(execution_id, container.start))


@shared_task(name=queue.RESUME_EXECUTION, bind=True, acks_late=True, reject_on_worker_lost=True,
             throws=(ExecutionFailed,))
def resume_execution(self, execution_id: int) -> dict[str, Any]:
    container = ExecutionContainer(execution_id, self.request.hostname, self.request.id)
    return _end_task_as(self, _within_logs_of(execution_id, container.resume))


@shared_task(name=queue.JOIN_CHILDREN, bind=True, acks_late=True, reject_on_worker_lost=True,
             throws=(ExecutionFailed,))
def join_children(self, execution_id: int) -> dict[str, Any]:
    """A chord's callback: the children it carried have all ended; wake their parent and go on
    with it here (no further message). Whether the children succeeded is read from their rows."""
    if not executions.wake_for_join(execution_id):
        return {"execution": execution_id, "claimed": False, "status": "not waiting"}
    container = ExecutionContainer(execution_id, self.request.hostname, self.request.id)
    return _end_task_as(self, _within_logs_of(execution_id, container.resume))


class ChordChildNotSucceeded(logging.Filter):
    """Celery's Redis backend logs a chord whose child did not succeed as an ERROR with a
    ``ChordError`` traceback ("Chord '…' raised: ChordError('Dependency … raised …')"). In a
    workflow that is an ordinary outcome: the child's own end is logged and recorded, and the
    chord's error callback (``join_children``) wakes the workflow, which decides. That line
    becomes one INFO line without a traceback; any other chord error passes unchanged."""

    LOGGER = "celery.backends.redis"
    CELERY_MESSAGE = "Chord %r raised: %r"

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (record.msg != self.CELERY_MESSAGE or not isinstance(args, tuple) or len(args) != 2
                or not isinstance(args[1], ChordError) or not str(args[1]).startswith("Dependency ")):
            return True
        record.msg = "chord %s: %s; its callback wakes the parent execution"
        record.args = (args[0], str(args[1]).replace("Dependency ", "child task ", 1))
        return lowered(record, logging.INFO)

    @classmethod
    def install(cls) -> None:
        add_filter_once(cls.LOGGER, cls())


def _within_logs_of(execution_id: int, step) -> Outcome:
    """Run ``step`` with the execution (and its request id) on every log line."""
    execution_id_var.set(execution_id)
    try:
        outcome = step()
    finally:
        request_id_var.set(None)
        execution_id_var.set(None)
    if not outcome.claimed:
        log.info("execution %s not claimed (status %s): duplicate, stale or canceled message",
                 execution_id, outcome.status)
    return outcome


def _end_task_as(task: Any, outcome: Outcome) -> dict[str, Any]:
    """Give the Celery task the execution's outcome as its state (Flower shows it)."""
    status, error = outcome.status, outcome.error
    if outcome.claimed and status == "already ended":
        # Ended meanwhile by someone else (the sweeper abandoned it, a cancel): mirror that end.
        row = db.session.execute(select(Execution.status, Execution.error)
                                 .where(Execution.id == outcome.execution_id)).one()
        db.session.rollback()
        status, error = row.status, row.error
    if outcome.claimed and status in FAILURE_STATUSES:
        reason = error.splitlines()[0][:REASON_MAX] if error else "no reason recorded"
        raise ExecutionFailed(f"execution {outcome.execution_id} ({outcome.action_ref}) {status}: {reason}")
    if outcome.claimed and status == CANCELED:
        # The worker announces REVOKED when the revoke reaches it while the task runs; a cancel
        # noticed through the Redis flag alone is announced here. Ignore: no SUCCESS after it.
        task.backend.mark_as_revoked(task.request.id, "canceled", request=task.request)
        task.send_event("task-revoked", terminated=False, signum=None, expired=False)
        raise Ignore()
    return outcome.as_dict()
