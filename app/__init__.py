"""Patchbay's Flask application factory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flask import Flask, g, request, send_from_directory
from flask_smorest import Api
from werkzeug.exceptions import RequestEntityTooLarge

from app.config import ConfigError, load_settings
from app.db import db
from app.errors import register_error_handlers
from app.extensions import jwt
from app.logging import (
    REQUEST_ID_HEADER,
    clean_request_id,
    configure_logging,
    new_request_id,
    request_id_var,
)
from app.security.edge import install_edge
from app.security.install import install_security
from app.security.keys import JWT_SIGNING, derived_key
from app.security.tokens import lifetimes
from app.services import action_cache
from app.services.audit import install_audit_hook
from app.services.unit_of_work import install as install_unit_of_work

SWAGGER_ASSETS_URL = "/docs/assets/"


def create_app(overrides: dict[str, Any] | None = None, *, serves_requests: bool = True) -> Flask:
    """Build the app from the environment; ``overrides`` replace settings (tests).

    A worker (``serves_requests=False``) signs and checks no credentials, so it needs no
    SECRET_KEY: action code on its host cannot steal what the process never held.
    """
    settings = load_settings()
    settings.update(overrides or {})
    if serves_requests and not settings["SECRET_KEY"]:
        raise ConfigError("SECRET_KEY is not set: the web process and the release step need it")
    app = Flask(__name__, static_folder=None)  # no static files: no /static route
    app.config.update(settings)
    app.config.update(
        MAX_CONTENT_LENGTH=settings["MAX_BODY_BYTES"],
        JSON_SORT_KEYS=False,
        API_TITLE="Patchbay",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="api/v1/openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_ASSETS_URL,
        # Swagger UI's default validator badge is an image from swagger.io: no third parties.
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        API_SPEC_OPTIONS={
            "info": {"description": "Event-driven automation: packs, actions, rules, executions."},
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                    # Given to python actions and sensor polls for the keys API only.
                    "runTokenAuth": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                }
            },
        },
        # Its own key, derived from SECRET_KEY: a token signed with SECRET_KEY itself is refused.
        JWT_SECRET_KEY=derived_key(settings["SECRET_KEY"], JWT_SIGNING) if settings["SECRET_KEY"] else None,
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_TOKEN_LOCATION=["headers"],
        PROPAGATE_EXCEPTIONS=False,
        **lifetimes(settings),
    )
    configure_logging(settings["LOG_LEVEL"], settings["LOG_FORMAT"])
    db.init(settings["DATABASE_URL"])

    # One Api per app: the spec is built per application (tests create several).
    rest_api = Api(app)
    jwt.init_app(app)
    register_error_handlers(app)

    from app.api import register_blueprints

    register_blueprints(rest_api)
    _install_request_hooks(app)
    _install_swagger_assets(app)
    install_security(app)
    install_audit_hook(app)
    # Every process that changes actions or packs tells the others' action caches.
    action_cache.track_changes(app.config["REDIS_URL"])
    install_edge(app)
    # Registered last, so it runs first of the after_request hooks (Flask runs them in
    # reverse): work done after a commit (a message sent; a request marked as recorded in a
    # log of its own) is done before the audit hook looks.
    install_unit_of_work(app)
    return app


def _install_request_hooks(app: Flask) -> None:
    import logging

    access_log = logging.getLogger("patchbay.access")

    @app.before_request
    def assign_request_id() -> None:
        g.request_id = clean_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
        g.request_started = time.perf_counter()
        request_id_var.set(g.request_id)

    @app.before_request
    def refuse_oversized_body() -> None:
        # Werkzeug enforces MAX_CONTENT_LENGTH only when a view reads the body; routes that
        # ignore theirs (enable, disable, cancel) must refuse an oversized one all the same.
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if limit is not None and (request.content_length or 0) > limit:
            raise RequestEntityTooLarge()

    @app.after_request
    def return_request_id(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
                "principal": g.principal.name if g.get("principal") else None,
            },
        )
        return response

    @app.teardown_appcontext
    def remove_session(_exc: BaseException | None) -> None:
        db.session.remove()
        request_id_var.set(None)


def _install_swagger_assets(app: Flask) -> None:
    import flask_swagger_ui

    dist = Path(flask_swagger_ui.__file__).parent / "dist"

    @app.get(SWAGGER_ASSETS_URL + "<path:filename>")
    def swagger_assets(filename: str):
        return send_from_directory(dist, filename, max_age=86400)

    swagger_assets._public = True  # type: ignore[attr-defined]
    swagger_assets._permission = None  # type: ignore[attr-defined]
