"""Structured logs: one JSON object per line, carrying the request id (or execution id)."""

from __future__ import annotations

import contextvars
import logging
import sys
import uuid

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
execution_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("execution_id", default=None)

REQUEST_ID_HEADER = "X-Request-ID"


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | None) -> str | None:
    """Accept a caller's id only if it is short and harmless (it ends up in logs)."""
    if not value:
        return None
    value = value.strip()
    if 0 < len(value) <= 64 and all(c.isalnum() or c in "-_.:" for c in value):
        return value
    return None


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        execution_id = execution_id_var.get()
        if execution_id is not None:
            record.execution_id = execution_id
        return True


def lowered(record: logging.LogRecord, level: int) -> bool:
    """For a filter: give ``record`` the lower ``level`` (and no traceback); whether its
    logger still lets that level through."""
    record.levelno, record.levelname = level, logging.getLevelName(level)
    record.exc_info = record.exc_text = None
    return logging.getLogger(record.name).isEnabledFor(level)


def add_filter_once(logger_name: str, log_filter: logging.Filter) -> None:
    """Attach ``log_filter`` to the logger unless a filter of its class is already there."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(existing, type(log_filter)) for existing in logger.filters):
        logger.addFilter(log_filter)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_patchbay", False):
            root.removeHandler(existing)
    handler._patchbay = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
