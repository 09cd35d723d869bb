"""The worker fixtures live in tests/worker.py (shared with tests/security); the helpers
are re-exported here for the modules that import them from this package."""

from tests.worker import (  # noqa: F401
    QUIET_BROKER_DB,
    TERMINAL,
    WORKER_ENV,
    RecordingServer,
    quiet_broker,
    spawn_worker,
    stop_group,
    wait_for,
    wait_until_done,
    wait_until_status,
    worker_name,
)
