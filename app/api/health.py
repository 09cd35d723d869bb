"""Liveness and readiness."""

from __future__ import annotations

import logging

import hvac
import marshmallow as ma
import requests
from flask import current_app
from flask.views import MethodView
from sqlalchemy import text

from app.api.common import Blueprint
from app.db import db
from app.extensions import redis_client
from app.security import public

blp = Blueprint("health", __name__, description="Liveness and readiness")
log = logging.getLogger("patchbay.health")


class HealthSchema(ma.Schema):
    status = ma.fields.String()
    checks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


def check_database() -> None:
    db.session.execute(text("SELECT 1"))


def check_redis() -> None:
    redis_client().ping()


def check_vault() -> None:
    client = hvac.Client(url=current_app.config["VAULT_ADDR"], timeout=2,
                         verify=current_app.config.get("VAULT_CACERT") or True)
    # sys/health answers without a token; sealed or uninitialised is not ready.
    if not client.sys.is_initialized() or client.sys.is_sealed():
        raise RuntimeError("sealed or not initialised")


CHECKS = {"database": check_database, "redis": check_redis, "vault": check_vault}


@blp.route("/health")
class Health(MethodView):
    @public
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is alive"""
        return {"status": "ok", "checks": {}}


@blp.route("/ready")
class Ready(MethodView):
    @public
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="A dependency is not reachable")
    def get(self):
        """PostgreSQL, Redis and Vault are reachable"""
        results: dict[str, str] = {}
        for name, check in CHECKS.items():
            try:
                check()
                results[name] = "ok"
            except (Exception, requests.RequestException) as exc:  # noqa: BLE001 - report, don't raise
                log.warning("readiness check failed", extra={"check": name, "error": type(exc).__name__})
                results[name] = f"unreachable ({type(exc).__name__})"
                if name == "database":
                    db.session.rollback()
        failed = [name for name, result in results.items() if result != "ok"]
        if failed:
            return {"status": f"not ready: {', '.join(failed)} unreachable", "checks": results}, 503
        return {"status": "ok", "checks": results}
