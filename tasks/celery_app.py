"""Build the Celery app from the Flask config; every task runs inside an app context."""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask

QUEUES = ("actions", "events", "celery")


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(
        broker_url=app.config["REDIS_URL"],
        result_backend=app.config["REDIS_URL"],
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_track_started=True,
        worker_prefetch_multiplier=1,
        task_default_queue="celery",
        task_routes={
            "patchbay.run_execution": {"queue": "actions"},
            "patchbay.process_event": {"queue": "events"},
        },
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Redis redelivers unacked messages after this; claims in PostgreSQL make that harmless,
        # and it must exceed the longest action timeout so it rarely happens at all.
        broker_transport_options={"visibility_timeout": 24 * 3600},
        timezone="UTC",
        enable_utc=True,
    )
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
