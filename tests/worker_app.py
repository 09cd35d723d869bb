"""The test workers' Celery app: Patchbay's own (tasks.worker) plus the ``test-tree`` runner
(tests/tree_runner.py), which waits on child executions the way workflows do."""

import tests.tree_runner  # noqa: F401 - registers the runner
from tasks.worker import celery, flask_app  # noqa: F401 - celery -A tests.worker_app
