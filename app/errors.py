"""Domain errors and the one error shape: ``{"code", "status", "message", "errors"}``.

Services raise these; the handlers registered by ``register_error_handlers`` turn them, and
every other exception, into that shape. A 5xx answer never carries a traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, jsonify
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from app.db import db

log = logging.getLogger("patchbay.errors")


class APIError(Exception):
    code = 500

    def __init__(self, message: str, errors: dict[str, Any] | None = None, code: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        if code is not None:
            self.code = code
        self.headers = headers or {}


class BadRequest(APIError):
    code = 400


class Unauthorized(APIError):
    code = 401


class Forbidden(APIError):
    code = 403


class NotFound(APIError):
    code = 404


class Conflict(APIError):
    code = 409


class ValidationError(APIError):
    code = 422


def error_body(code: int, message: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        status = HTTPStatus(code).phrase
    except ValueError:
        status = "Error"
    return {"code": code, "status": status, "message": message, "errors": errors or {}}


def error_response(code: int, message: str, errors: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None):
    response = jsonify(error_body(code, message, errors))
    response.status_code = code
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _webargs_errors(exc: HTTPException) -> dict[str, Any] | None:
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if not messages:
        return None
    # webargs nests by location ({"json": {"field": [...]}}); flatten a single location.
    if len(messages) == 1:
        (only,) = messages.values()
        return only if isinstance(only, dict) else {"_schema": only}
    return messages


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(APIError)
    def handle_api_error(exc: APIError):
        db.session.rollback()
        return error_response(exc.code, exc.message, exc.errors, exc.headers)

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException):
        db.session.rollback()
        code = exc.code or 500
        errors = _webargs_errors(exc)
        if code == 422 or errors:
            message = "The request is not valid."
            if errors and set(errors) == {"_schema"}:
                message = "; ".join(str(m) for m in errors["_schema"]) or message
        elif code == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"The request body is larger than the limit of {limit} bytes."
        elif code == 400:
            message = "The request body could not be parsed."
        else:
            message = exc.description or HTTPStatus(code).phrase
        headers = {}
        valid_methods = getattr(exc, "valid_methods", None)
        if code == 405 and valid_methods:
            headers["Allow"] = ", ".join(valid_methods)
        retry_after = getattr(exc, "retry_after", None) or (exc.response.headers.get("Retry-After") if exc.response is not None else None)
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        return error_response(code, message, errors, headers)

    @app.errorhandler(IntegrityError)
    def handle_integrity_error(exc: IntegrityError):
        db.session.rollback()
        log.info("integrity error: %s", exc.orig.__class__.__name__)
        return error_response(409, "The change conflicts with existing data.")

    @app.errorhandler(DataError)
    def handle_data_error(exc: DataError):
        # A value PostgreSQL refuses (out of range, NUL byte, ...) that validation let by.
        db.session.rollback()
        log.info("data error: %s", exc.orig.__class__.__name__)
        return error_response(422, "A value is out of range or not storable.")

    @app.errorhandler(OperationalError)
    def handle_database_down(exc: OperationalError):
        db.session.rollback()
        log.error("database unavailable: %s", exc.orig.__class__.__name__)
        return error_response(503, "The database is not available.", headers={"Retry-After": "5"})

    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    def handle_redis_down(exc: Exception):
        db.session.rollback()
        log.error("redis unavailable: %s", type(exc).__name__)
        return error_response(503, "Redis is not available.", headers={"Retry-After": "5"})

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        db.session.rollback()
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "An internal error occurred; it has been logged.")
