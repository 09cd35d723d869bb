"""Sending work to Celery by task name, so nothing under app/ imports tasks/.

The web process has no worker-side Celery app; it gets a small producer-only one built from
the same configuration (``celery_config``) the worker uses. In a worker, where
``celery_init_app`` has put the full app in ``app.extensions["celery"]``, that one is used.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, chord
from flask import current_app

from app.services import redis_transport

redis_transport.install()

RUN_EXECUTION = "patchbay.run_execution"
RESUME_EXECUTION = "patchbay.resume_execution"
JOIN_CHILDREN = "patchbay.join_children"
PROCESS_EVENT = "patchbay.process_event"
SWEEP_EXECUTIONS = "patchbay.sweep_executions"
PURGE_ORPHAN_SECRETS = "patchbay.purge_orphan_secrets"
SWEEP_EVENTS = "patchbay.sweep_events"
PURGE_EVENTS = "patchbay.purge_events"
PURGE_EXPIRED_KEYS = "patchbay.purge_expired_keys"
EXPIRE_INQUIRIES = "patchbay.expire_inquiries"
ACTIONS_QUEUE, EVENTS_QUEUE, DEFAULT_QUEUE = "actions", "events", "celery"
QUEUES = (ACTIONS_QUEUE, EVENTS_QUEUE, DEFAULT_QUEUE)


def celery_config(config: dict[str, Any]) -> dict[str, Any]:
    """Celery settings from the Flask config, shared by the producer and the worker."""
    return {
        "broker_url": config["REDIS_URL"],
        "result_backend": config["REDIS_URL"],
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_track_started": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": DEFAULT_QUEUE,
        "task_routes": {
            RUN_EXECUTION: {"queue": ACTIONS_QUEUE},
            RESUME_EXECUTION: {"queue": ACTIONS_QUEUE},
            JOIN_CHILDREN: {"queue": ACTIONS_QUEUE},
            PROCESS_EVENT: {"queue": EVENTS_QUEUE},
        },
        "result_expires": 3600,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        # Flower and `celery events` need them; they carry argsrepr, never parameters.
        "worker_send_task_events": True,
        # No `task-sent` event: it cost the sender a second Redis write per message (more than
        # the message itself, docs/performance.md). Flower learns of a task when a worker
        # receives it; what is queued and not yet received is the API's `requested` executions.
        "task_send_sent_event": False,
        # Redis redelivers unacked messages after this; claims in PostgreSQL make that
        # harmless, and it must exceed the longest action timeout so it rarely happens at all.
        "broker_transport_options": {"visibility_timeout": 24 * 3600},
        "result_backend_transport_options": {"visibility_timeout": 24 * 3600},
        "timezone": "UTC",
        "enable_utc": True,
    }


_producers: dict[str, Celery] = {}


def celery_app() -> Celery:
    """The Celery app to send with from the current Flask app."""
    existing = current_app.extensions.get("celery")
    if existing is not None:
        return existing
    # One producer per broker URL, built once: Celery apps hold connection pools, and every
    # enqueue comes through here.
    broker = current_app.config["REDIS_URL"]
    producer = _producers.get(broker)
    if producer is None:
        producer = Celery("patchbay-producer", set_as_current=False)
        producer.conf.update(celery_config(current_app.config))
        _producers[broker] = producer
    return producer


def send(name: str, args: list[Any], *, summary: str, task_id: str | None = None,
         countdown: float | None = None, **options: Any) -> str:
    """Send task ``name`` with ids only; ``summary`` is what Flower shows instead of the args."""
    # ignore_result: an execution's state and result live in PostgreSQL, and Flower reads
    # task events, so nobody reads Celery's result backend for these tasks. Storing results
    # would cost the worker two Redis writes per task, and the sender a subscribe/unsubscribe.
    result = celery_app().send_task(
        name, args=args, kwargs={}, task_id=task_id, countdown=countdown,
        argsrepr=summary, kwargsrepr="{}", ignore_result=True, **options,
    )
    return result.id


def send_chord(header_name: str, headers: list[tuple[int, str, str, float]], body_name: str, body_id: int, *,
               summary: str) -> str:
    """A chord: ``header_name(id)`` for each ``(id, task_id, summary, time_limit)``, then
    ``body_name(body_id)`` once they have all ended — whether they succeeded or not (the body
    is also the chord's error callback). The messages carry ids only."""
    app = celery_app()
    body = app.signature(body_name, args=[body_id], immutable=True, argsrepr=summary, kwargsrepr="{}",
                         ignore_result=True)
    body.on_error(app.signature(body_name, args=[body_id], immutable=True, argsrepr=summary, kwargsrepr="{}",
                                ignore_result=True))
    # The header tasks keep their results: the result backend counts them for the chord.
    header = [app.signature(header_name, args=[execution_id], immutable=True, task_id=task_id, argsrepr=text,
                            kwargsrepr="{}", time_limit=time_limit)
              for execution_id, task_id, text, time_limit in headers]
    return chord(header, body, app=app).apply_async().id


def revoke(task_id: str, *, terminate: bool = False, signal: str | None = None) -> None:
    """Broadcast a revoke to every worker (any host)."""
    options: dict[str, Any] = {"terminate": terminate}
    if signal:
        options["signal"] = signal
    celery_app().control.revoke(task_id, **options)
