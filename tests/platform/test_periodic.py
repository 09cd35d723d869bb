"""Periodic tasks: one lock helper, beat entries declared beside the tasks, a quiet log."""

from __future__ import annotations

import logging
import time

import tasks.maintenance  # noqa: F401 - declares its periodic tasks
from app.services import queue
from tasks.periodic import QuietPeriodic, at_most_one, beat_schedule, lock_key

RECEIVED = "Task %(name)s[%(id)s] received"


def record(name: str, level: int, msg: str, args) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_only_one_holder_and_only_the_holder_releases(app):
    from app.extensions import redis_client

    with app.app_context():
        with at_most_one("test-one-at-a-time", 30) as first, at_most_one("test-one-at-a-time", 30) as second:
            assert (first, second) == (True, False)
        with at_most_one("test-one-at-a-time", 0.2) as mine:
            assert mine
            time.sleep(0.4)  # expired: another run takes the lock...
            other = redis_client().lock(lock_key("test-one-at-a-time"), timeout=30)
            assert other.acquire(blocking=False)
        # ...and the first run's exit left the other's lock in place.
        assert redis_client().get(lock_key("test-one-at-a-time")) is not None
        other.release()


def test_every_housekeeping_task_is_on_the_beat_schedule(app):
    schedule = beat_schedule(app.config)
    assert {entry["task"] for entry in schedule.values()} >= {
        queue.SWEEP_EXECUTIONS, queue.SWEEP_EVENTS, queue.PURGE_EVENTS}
    assert all(entry["options"]["expires"] > 0 for entry in schedule.values())


def test_celery_lines_about_periodic_tasks_are_debug_only():
    # Celery logs these with a dict of arguments (LogRecord unwraps a 1-tuple holding one).
    quiet = QuietPeriodic()
    logging.getLogger("celery.worker.strategy").setLevel(logging.INFO)
    logging.getLogger("celery.beat").setLevel(logging.INFO)
    routine = record("celery.worker.strategy", logging.INFO, RECEIVED, ({"name": queue.SWEEP_EXECUTIONS, "id": "1"},))
    sending = record("celery.beat", logging.INFO, "Scheduler: Sending due task %s (%s)",
                     ("sweep-events", queue.SWEEP_EVENTS))
    execution = record("celery.worker.strategy", logging.INFO, RECEIVED, ({"name": queue.RUN_EXECUTION, "id": "2"},))
    failed = record("celery.app.trace", logging.ERROR, "Task %(name)s[%(id)s] raised unexpected",
                    ({"name": queue.SWEEP_EXECUTIONS, "id": "3"},))

    assert not quiet.filter(routine) and routine.levelname == "DEBUG"
    assert not quiet.filter(sending)
    assert quiet.filter(execution) and execution.levelname == "INFO"
    assert quiet.filter(failed) and failed.levelname == "ERROR"
    logging.getLogger("celery.beat").setLevel(logging.DEBUG)
    assert quiet.filter(record("celery.beat", logging.INFO, "Scheduler: Sending due task %s (%s)",
                               ("sweep-events", queue.SWEEP_EVENTS)))
    logging.getLogger("celery.beat").setLevel(logging.NOTSET)
    logging.getLogger("celery.worker.strategy").setLevel(logging.NOTSET)
