"""Build the Celery app from the Flask config; every task runs inside an app context."""

from __future__ import annotations

from celery import Celery, Task
from celery.signals import worker_process_init
from flask import Flask

from app.db import db
from app.services import unit_of_work
from app.services.queue import celery_config
from tasks.runners.isolation import make_non_dumpable


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                try:
                    return self.run(*args, **kwargs)
                finally:
                    # What the task committed asked for (messages, events) goes out now,
                    # whatever the task went on to do (app/services/unit_of_work.py).
                    unit_of_work.drain()

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(celery_config(app.config))
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


@worker_process_init.connect
def _fresh_connections_after_fork(**_kwargs) -> None:
    # Pool processes start actions: keep them non-dumpable even if the pool was started by
    # exec (the flag does not survive exec).
    make_non_dumpable()
    # A forked pool child must not reuse the parent's pooled PostgreSQL connections.
    if db.engine is not None:
        db.engine.dispose(close=False)
