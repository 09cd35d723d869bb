"""Periodic housekeeping, run by celery beat (each task declares its schedule with ``@periodic``).

sweep_executions ends executions whose worker died (stale heartbeat → ``abandoned``, or a new
attempt where the action's retry policy says so), re-sends ``requested`` executions whose
message was lost and resumes waiting executions whose resume was lost (claims make a
duplicate harmless); a waiting execution is never abandoned, having no worker to die. ``@periodic``'s lock keeps two runs of a
task from overlapping (two beats by mistake, or a sweep slower than its interval).

sweep_events re-sends events whose message was lost and frees those whose worker died
mid-way; purge_events deletes events and enforcements past EVENT_RETENTION_DAYS in batches
(app/services/event_upkeep.py). purge_expired_keys deletes keys past their ttl, and their
secrets in Vault (app/services/keys.py), and the run tokens that can no longer be used.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import current_app

from app.db import db
from app.extensions import redis_client
from app.services import (
    event_upkeep,
    execution_logs,
    executions,
    queue,
    run_tokens,
    unit_of_work,
    vault_upkeep,
)
from app.services import execution_transitions as transitions
from app.services import keys as key_store
from app.services.events import enqueue_event
from tasks.periodic import periodic

log = logging.getLogger("patchbay.maintenance")

SWEEP_SECONDS = 120  # longer than a sweep takes; the lock expires by itself if the sweeper dies
PURGE_MAX_BATCHES = 200  # one run deletes at most this many batches; the next run goes on


def sweep_interval(config: Mapping[str, Any]) -> float:
    """Often enough that a stale heartbeat is noticed well within the abandon age."""
    return float(max(1, min(config["HEARTBEAT_SECONDS"], config["ABANDON_AFTER_SECONDS"] // 2 or 1)))


@periodic(queue.SWEEP_EXECUTIONS, every=sweep_interval, lock_seconds=SWEEP_SECONDS, expires=60)
def sweep_executions() -> dict[str, Any]:
    abandoned = abandon_stale()
    requeued = requeue_lost()
    resumed = resume_lost()
    return {"skipped": False, "abandoned": abandoned, "requeued": requeued, "resumed": resumed}


def abandon_stale() -> list[int]:
    """End executions a worker owned and stopped beating for (never a waiting one: it has
    no worker; see ``resume_lost``)."""
    config = current_app.config
    client = redis_client()
    ended: list[int] = []
    for execution in transitions.stale_active(config["ABANDON_AFTER_SECONDS"]):
        try:
            truncated = execution_logs.persist_lines(client, execution.id)
            status = transitions.abandon(execution, config["ABANDON_AFTER_SECONDS"], truncated)
            if status is None:
                db.session.rollback()
                continue
            executions.create_retry(execution, status)
            executions.ended([execution.id], secrets=executions.has_stored_secrets(execution), logs=False)
            unit_of_work.commit()
        except Exception:  # noqa: BLE001 - stale rows are swept oldest first: one that cannot
            # be ended must not stop every later sweep from reaching the others.
            db.session.rollback()
            log.exception("execution %s could not be abandoned", execution.id)
            continue
        log.warning("execution %s %s: no heartbeat from %s", execution.id, status, execution.worker_host)
        ended.append(execution.id)
    return ended


def requeue_lost() -> list[int]:
    if _actions_queue_length() > 0:
        # Messages are still waiting: a queued row is most likely behind them, not lost;
        # re-sending the whole backlog would only duplicate it.
        return []
    sent: list[int] = []
    for execution in transitions.lost_queued(current_app.config["REQUEUE_AFTER_SECONDS"]):
        if not transitions.mark_requeued(execution):
            db.session.rollback()
            continue
        executions.enqueue(execution)
        unit_of_work.commit()
        sent.append(execution.id)
    if sent:
        log.warning("re-sent %d execution(s) whose message was lost: %s", len(sent), sent[:20])
    return sent


def resume_lost() -> list[int]:
    """Resume waiting executions that were woken but not resumed (the message was lost, or
    the worker died before the resume was claimed), and waiting parents whose children all
    ended without a wake reaching them."""
    if _actions_queue_length() > 0:
        return []  # resume messages may be waiting in the queue
    lost = transitions.woken_not_resumed(current_app.config["REQUEUE_AFTER_SECONDS"])
    for execution_id in lost:
        unit_of_work.after_commit(executions.send_resume, execution_id)
    unit_of_work.commit()
    if lost:
        log.warning("resumed %d waiting execution(s) whose wake was not acted on: %s", len(lost), lost[:20])
    return lost


@periodic(queue.PURGE_ORPHAN_SECRETS, every=3600.0, lock_seconds=3600)
def purge_orphan_secrets() -> dict[str, Any]:
    """Delete secrets in Vault that nothing needs: those of executions that ended, and those
    of execution or key rows never committed (a crash between the Vault write and the commit)
    once they are older than ORPHAN_SECRET_AGE (an insert may be in flight)."""
    removed = vault_upkeep.purge_orphan_execution_secrets()
    keys = vault_upkeep.purge_orphan_key_secrets()
    if removed or keys:
        log.info("removed %d orphaned execution secret(s) and %d key secret(s) from Vault", len(removed), len(keys))
    return {"skipped": False, "removed": removed, "keys": keys}


def _actions_queue_length() -> int:
    return _queue_length(queue.ACTIONS_QUEUE)


def _queue_length(name: str) -> int:
    # kombu's Redis transport keeps a queue as a list named after it (plus one list per
    # priority step, suffixed "\x06\x16<n>").
    client = redis_client()
    keys = [name] + [f"{name}\x06\x16{p}" for p in (3, 6, 9)]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.llen(key)
    return sum(pipe.execute())


# Events left pending (message lost) or processing (worker lost) go round again.
@periodic(queue.SWEEP_EVENTS, every=10.0, lock_seconds=SWEEP_SECONDS, expires=60)
def sweep_events() -> dict[str, Any]:
    config = current_app.config
    released = event_upkeep.release_stuck(config["ABANDON_AFTER_SECONDS"])
    db.session.commit()
    if released:
        log.warning("freed %d event(s) whose worker stopped mid-way: %s", len(released), released[:20])
    sent: list[int] = []
    # With messages still waiting, a pending event is most likely behind them, not lost.
    if _queue_length(queue.EVENTS_QUEUE) == 0:
        lost = event_upkeep.lost_pending(config["REQUEUE_AFTER_SECONDS"])
        db.session.rollback()
        for event in lost:
            enqueue_event(event)
            sent.append(event.id)
    if sent:
        log.warning("re-sent %d event(s) whose message was lost: %s", len(sent), sent[:20])
    return {"skipped": False, "released": released, "requeued": sent}


@periodic(queue.PURGE_EVENTS, every=3600.0, lock_seconds=3600)
def purge_events() -> dict[str, Any]:
    deleted = 0
    for _ in range(PURGE_MAX_BATCHES):
        count = event_upkeep.purge_batch(current_app.config["EVENT_RETENTION_DAYS"])
        db.session.commit()  # one short transaction per batch: no long lock on the tables
        deleted += count
        if count == 0:
            break
    if deleted:
        log.info("purged %d row(s) older than EVENT_RETENTION_DAYS", deleted)
    return {"skipped": False, "deleted": deleted}


@periodic(queue.PURGE_EXPIRED_KEYS, every=60.0, lock_seconds=300, expires=60)
def purge_expired_keys() -> dict[str, Any]:
    """Expired keys are already absent from every read; this removes the rows and secrets."""
    deleted = 0
    for _ in range(PURGE_MAX_BATCHES):
        count = key_store.purge_batch()
        unit_of_work.commit()  # one short transaction per batch
        deleted += count
        if count == 0:
            break
    if deleted:
        log.info("purged %d expired key(s)", deleted)
    # Run tokens of ended executions and past their expiry are refused already; remove them.
    tokens = 0
    for _ in range(PURGE_MAX_BATCHES):
        count = run_tokens.purge_ended()
        unit_of_work.commit()
        tokens += count
        if count < run_tokens.PURGE_BATCH:
            break
    return {"skipped": False, "deleted": deleted, "run_tokens": tokens}
