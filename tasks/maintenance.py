"""Periodic housekeeping, run by celery beat (see ``beat_schedule`` in app/services/queue.py).

sweep_executions ends executions whose worker died (stale heartbeat → ``abandoned``, or a new
attempt where the action's retry policy says so) and re-sends ``requested`` executions whose
message was lost (claims make a duplicate harmless). A Redis lock keeps two sweeps from
overlapping (two beats by mistake, or a sweep slower than its interval).

sweep_events re-sends events whose message was lost and frees those whose worker died
mid-way; purge_events deletes events and enforcements past EVENT_RETENTION_DAYS in batches
(app/services/event_upkeep.py).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from flask import current_app

from app.db import db
from app.extensions import redis_client
from app.services import event_upkeep, execution_events, execution_logs, executions, queue
from app.services import execution_lifecycle as lifecycle
from app.services.events import enqueue_event

log = logging.getLogger("patchbay.maintenance")

LOCK_NAME = "patchbay:lock:sweep-executions"
LOCK_SECONDS = 120  # longer than a sweep takes; expires by itself if the sweeper dies
EVENTS_LOCK_NAME = "patchbay:lock:sweep-events"
PURGE_LOCK_NAME = "patchbay:lock:purge-events"
PURGE_MAX_BATCHES = 200  # one run deletes at most this many batches; the next run goes on


@shared_task(name=queue.SWEEP_EXECUTIONS, acks_late=False)
def sweep_executions() -> dict[str, Any]:
    lock = redis_client().lock(LOCK_NAME, timeout=LOCK_SECONDS, blocking=False)
    if not lock.acquire(blocking=False):
        log.info("another sweep is running; skipped")
        return {"skipped": True}
    try:
        abandoned = abandon_stale()
        requeued = requeue_lost()
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - it expired meanwhile; nothing to release
            pass
    return {"skipped": False, "abandoned": abandoned, "requeued": requeued}


def abandon_stale() -> list[int]:
    config = current_app.config
    client = redis_client()
    ended: list[int] = []
    for execution in lifecycle.stale_active(config["ABANDON_AFTER_SECONDS"]):
        try:
            truncated = execution_logs.persist_lines(client, execution.id)
            status = lifecycle.abandon(execution, config["ABANDON_AFTER_SECONDS"], truncated)
            if status is None:
                db.session.rollback()
                continue
            retry = lifecycle.create_retry(execution, status)
            db.session.commit()
        except Exception:  # noqa: BLE001 - stale rows are swept oldest first: one that cannot
            # be ended must not stop every later sweep from reaching the others.
            db.session.rollback()
            log.exception("execution %s could not be abandoned", execution.id)
            continue
        execution_logs.drop_redis_lines(client, execution.id)
        client.delete(executions.cancel_key(execution.id))
        if retry is not None:
            executions.enqueue(retry, countdown=(retry.scheduled_at - retry.created_at).total_seconds() or None)
        executions.forget_secrets(execution)
        log.warning("execution %s %s: no heartbeat from %s", execution.id, status, execution.worker_host)
        ended.append(execution.id)
        try:
            execution_events.fire_execution_finished(execution.id)
        except Exception:  # noqa: BLE001 - the execution has ended whatever becomes of its event
            db.session.rollback()
            log.exception("execution %s: its core.execution_finished event could not be recorded", execution.id)
    return ended


def requeue_lost() -> list[int]:
    if _actions_queue_length() > 0:
        # Messages are still waiting: a queued row is most likely behind them, not lost;
        # re-sending the whole backlog would only duplicate it.
        return []
    sent: list[int] = []
    for execution in lifecycle.lost_queued(current_app.config["REQUEUE_AFTER_SECONDS"]):
        if not lifecycle.mark_requeued(execution):
            db.session.rollback()
            continue
        db.session.commit()
        executions.enqueue(execution)
        sent.append(execution.id)
    if sent:
        log.warning("re-sent %d execution(s) whose message was lost: %s", len(sent), sent[:20])
    return sent


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


def _locked(name: str, seconds: int):
    lock = redis_client().lock(name, timeout=seconds, blocking=False)
    return lock if lock.acquire(blocking=False) else None


def _release(lock) -> None:
    try:
        lock.release()
    except Exception:  # noqa: BLE001 - it expired meanwhile; nothing to release
        pass


@shared_task(name=queue.SWEEP_EVENTS, acks_late=False)
def sweep_events() -> dict[str, Any]:
    lock = _locked(EVENTS_LOCK_NAME, LOCK_SECONDS)
    if lock is None:
        return {"skipped": True}
    try:
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
    finally:
        _release(lock)


@shared_task(name=queue.PURGE_EVENTS, acks_late=False)
def purge_events() -> dict[str, Any]:
    lock = _locked(PURGE_LOCK_NAME, 3600)
    if lock is None:
        return {"skipped": True}
    deleted = 0
    try:
        for _ in range(PURGE_MAX_BATCHES):
            count = event_upkeep.purge_batch(current_app.config["EVENT_RETENTION_DAYS"])
            db.session.commit()  # one short transaction per batch: no long lock on the tables
            deleted += count
            if count == 0:
                break
    finally:
        _release(lock)
    return {"skipped": False, "deleted": deleted}
