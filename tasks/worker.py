"""Entry module for ``celery -A tasks.worker``: builds the Flask app and exposes its Celery.

Every module of the ``tasks`` package (executions, maintenance, events, ...) is imported so
its tasks are registered, whoever added it; then the periodic ones they declared
(``@periodic``) become beat's schedule.
"""

import importlib
import pkgutil

import tasks
from app.cli import fail_on_config_error

NOT_TASK_MODULES = {"celery_app", "worker", "runners", "periodic"}

with fail_on_config_error():
    from app import create_app
    from tasks.celery_app import celery_init_app
    from tasks.periodic import QuietPeriodic, beat_schedule
    from tasks.runners.isolation import Isolation, make_non_dumpable

    # Before anything reads a secret: actions run as this user in same-user mode.
    make_non_dumpable()
    flask_app = create_app(serves_requests=False)
    Isolation.from_config(flask_app.config)  # a mode this process cannot honour stops it here
    celery = celery_init_app(flask_app)
    for module in pkgutil.iter_modules(tasks.__path__):
        if module.name not in NOT_TASK_MODULES:
            importlib.import_module(f"tasks.{module.name}")
    celery.conf.beat_schedule = beat_schedule(flask_app.config)
    QuietPeriodic.install()
    from tasks.executions import ChordChildNotSucceeded  # imported above, with every task

    ChordChildNotSucceeded.install()
