"""The worker fixtures live in tests/worker.py (shared with tests/security); the helpers
are re-exported here for the modules that import them from this package."""

import pytest
import redis

from tests.worker import (  # noqa: F401
    TERMINAL,
    WORKER_ENV,
    RecordingServer,
    spawn_worker,
    stop_group,
    wait_for,
    wait_until_done,
    wait_until_status,
    worker_name,
)

# A Redis database no worker reads: what is sent there stays countable.
QUIET_BROKER_DB = 14


@pytest.fixture
def quiet_broker(app, committed_db):
    """Point the app at the quiet broker database; yield a client on it."""
    saved = app.config["REDIS_URL"]
    url = f"{saved.rsplit('/', 1)[0]}/{QUIET_BROKER_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    app.config["REDIS_URL"] = url
    try:
        yield client
    finally:
        app.config["REDIS_URL"] = saved
        client.flushdb()
