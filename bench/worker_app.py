"""The worker the benchmark starts: Patchbay's own (tasks.worker) plus one plain noop task,
so both measurements run on the same broker, pool and settings."""

from tasks.worker import celery, flask_app  # noqa: F401 - celery -A bench.worker_app

PLAIN_NOOP = "bench.plain_noop"


@celery.task(name=PLAIN_NOOP, queue="actions")
def plain_noop() -> dict:
    return {}


PLAIN_JOIN = "bench.plain_join"


@celery.task(name=PLAIN_JOIN, queue="actions")
def plain_join(results: list) -> int:
    """A chord's body: how many header tasks it joined."""
    return len(results)
