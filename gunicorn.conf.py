"""Settings every gunicorn started from this directory reads (the Procfile's web process)."""

# An oversized body is refused unread: tell the client the connection closes with the 413.
from app.security.edge import close_oversized_connection as pre_request  # noqa: F401
