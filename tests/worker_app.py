"""The test workers' Celery app: Patchbay's own (tasks.worker) plus the ``test-tree`` runner
(tests/tree_runner.py), which waits on child executions the way workflows do.

``PATCHBAY_TEST_UNREGISTER`` (comma-separated task names) makes a worker that does not know
those tasks: their messages reach it and are dropped, as a lost message would be.
"""

import os

import tests.tree_runner  # noqa: F401 - registers the runner
from tasks.worker import celery, flask_app  # noqa: F401 - celery -A tests.worker_app

for _name in filter(None, os.environ.get("PATCHBAY_TEST_UNREGISTER", "").split(",")):
    celery.tasks.pop(_name, None)
