"""Settings every gunicorn started from this directory reads (the Procfile's web process)."""

import gc

# An oversized body is refused unread: tell the client the connection closes with the 413.
from app.security.edge import close_oversized_connection as pre_request  # noqa: F401


def post_worker_init(worker):
    """Once the app is loaded, move everything it built into the collector's permanent
    generation: Flask, SQLAlchemy's mappers and marshmallow's schemas live as long as the
    process, and a full collection walked all of them again (~190,000 objects) — about 5 %
    of a request's CPU on the 2-core machine (docs/performance.md)."""
    gc.collect()
    gc.freeze()
