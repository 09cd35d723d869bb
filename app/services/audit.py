"""The audit log: who did what to which resource, when, and how it ended.

Entries are written on their own connection and committed at once, so an entry survives the
request's own rollback (a failed or denied call is audited too). Never write a secret here:
no bodies, passwords, tokens or key values — only names, refs, ids and status codes.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Flask, g, has_request_context, request
from limits import parse
from psycopg.types.json import Jsonb
from sqlalchemy import Select, select

from app.db import db, utcnow
from app.engine.unstorable import map_strings, storable
from app.errors import APIError
from app.models import AuditEntry
from app.security.authenticate import authenticate
from app.security.ratelimit import client_address, limiter
from app.security.routes import declared_access

log = logging.getLogger("patchbay.audit")

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/v1/"
# URL arguments that name the resource, most specific first.
RESOURCE_ARGS = ("ref", "name", "id", "key_id", "identity_id", "execution_id", "event_id", "inquiry_id")
# Entries written for callers nobody authenticated (failed logins, 401s), per client address:
# enough for every attempt the login rate limit lets through, not enough to flood the table.
ANONYMOUS_ENTRIES = parse("30 per minute")
# The warning that entries were dropped: once a minute per address, not once per dropped entry.
OVER_BUDGET_WARNINGS = parse("1 per minute")
RECORDED_ELSEWHERE = "audit_recorded_elsewhere"


def outcome_for(status_code: int) -> str:
    if status_code in (401, 403, 429):
        return "denied"
    return "success" if status_code < 400 else "failure"


def _request_actor() -> tuple[str | None, dict[str, Any]]:
    principal = g.get("principal")
    if principal is not None:
        extra = {"api_key": principal.api_key.prefix} if principal.api_key is not None else {}
        return principal.name, extra
    # Views that know who is trying before anyone is authenticated (login) set this.
    return g.get("audit_actor"), {}


def record_audit(action: str, resource_type: str, resource_ref: str | None = None, *,
                 outcome: str = "success", status_code: int | None = None,
                 actor: str | None = None, details: dict[str, Any] | None = None) -> None:
    """Write one entry now, outside the caller's transaction (e.g. a secret was read)."""
    extra: dict[str, Any] = {}
    request_id = remote_addr = None
    if has_request_context():
        request_actor, extra = _request_actor()
        actor = actor or request_actor
        request_id = g.get("request_id")
        # The peer, or the client the trusted proxies name (PROXY_HOPS); never a raw header.
        remote_addr = client_address()
    # One statement in autocommit: the same guarantee as BEGIN/INSERT/COMMIT, in one round
    # trip instead of three (it runs on every write call).
    db.run_alone(_INSERT_ENTRY, {
        "created_at": utcnow(), "actor": _text(actor, 255), "action": _text(action, 128),
        "resource_type": _text(resource_type, 64), "resource_ref": _text(resource_ref or None, 512),
        "outcome": outcome, "status_code": status_code, "request_id": request_id,
        "remote_addr": _text(remote_addr, 64), "details": Jsonb(map_strings({**extra, **(details or {})}, storable)),
    })


_ENTRY_COLUMNS = ("created_at", "actor", "action", "resource_type", "resource_ref", "outcome", "status_code",
                  "request_id", "remote_addr", "details")
_INSERT_ENTRY = (f"INSERT INTO {AuditEntry.__tablename__} ({', '.join(_ENTRY_COLUMNS)})"
                 f" VALUES ({', '.join(f'%({name})s' for name in _ENTRY_COLUMNS)})")


def _text(value: str | None, limit: int) -> str | None:
    # A request that named its resource with a NUL (or an unpaired surrogate) is audited too.
    return storable(value)[:limit] if value is not None else None


def _resource_of(response) -> tuple[str, str | None]:
    resource_type = request.blueprint or request.path[len(API_PREFIX):].split("/", 1)[0] or "api"
    args = request.view_args or {}
    for name in RESOURCE_ARGS:
        if name in args:
            return resource_type, str(args[name])
    if args:
        return resource_type, str(next(iter(args.values())))
    # A creation names its new resource only in the answer; take its handle, nothing else.
    if response.status_code == 201 and response.is_json:
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            for field in ("ref", "name", "id"):
                if body.get(field) is not None:
                    return resource_type, str(body[field])
    return resource_type, None


def _denied_permission(response) -> str | None:
    if response.status_code != 403 or not response.is_json:
        return None
    body = response.get_json(silent=True)
    errors = body.get("errors") if isinstance(body, dict) else None
    permission = errors.get("permission") if isinstance(errors, dict) else None
    return permission if isinstance(permission, str) else None


def recorded_elsewhere() -> None:
    """The current request is committed in a record of its own that says who called, from
    where and how it ended (a webhook's request log), so it gets no audit entry."""
    setattr(g, RECORDED_ELSEWHERE, True)


def install_audit_hook(app: Flask) -> None:
    @app.after_request
    def audit_mutations(response):
        if request.method not in MUTATING_METHODS or not request.path.startswith(API_PREFIX):
            return response
        if g.get(RECORDED_ELSEWHERE):
            return response
        if request.endpoint is None and _caller() is None:
            # A 404/405 on no route: nothing happened, and anyone could write rows this way.
            return response
        if g.get("principal") is None and not _within_anonymous_budget():
            if _first_warning_of_window():
                log.warning("audit entries for unauthenticated calls from %s are over budget (%s); not written"
                            " (logged once a minute)", client_address(), ANONYMOUS_ENTRIES)
            return response
        access = declared_access(app, request.endpoint, request.method)
        action = access.permission or ("authenticated" if access.authenticated
                                       else "public" if access.public else "unrouted")
        resource_type, resource_ref = _resource_of(response)
        details = {"method": request.method, "endpoint": request.endpoint, "path": request.path}
        if request.view_args and len(request.view_args) > 1:
            details["args"] = {k: str(v) for k, v in request.view_args.items()}
        missing = _denied_permission(response)
        if missing:
            # The view may check a second permission (rules need actions:execute too).
            details["denied_permission"] = missing
        try:
            record_audit(action, resource_type, resource_ref, outcome=outcome_for(response.status_code),
                         status_code=response.status_code, details=details)
        except Exception:  # noqa: BLE001 - the call already happened; losing its answer helps no one
            log.exception("could not write the audit entry")
        return response


def _caller():
    """The authenticated caller of a request no view handled, or None (bad credentials too)."""
    try:
        principal = authenticate()
    except APIError:
        return None
    if principal is not None:
        g.principal = principal
    return principal


def _within_anonymous_budget() -> bool:
    return _counted(ANONYMOUS_ENTRIES, "audit-anonymous")


def _first_warning_of_window() -> bool:
    return _counted(OVER_BUDGET_WARNINGS, "audit-anonymous-warned")


def _counted(limit, name: str) -> bool:
    """Whether this request is within ``limit`` for the caller's address; True without Redis
    (an entry, or a warning, written is better than one lost)."""
    try:
        return limiter.limiter.hit(limit, name, client_address())
    except Exception:  # noqa: BLE001 - see the docstring
        log.warning("could not count %s for %s", name, client_address(), exc_info=True)
        return True


def filter_audit(query: Select, args: dict[str, Any]) -> Select:
    """The audit list's filters, each on an indexed or narrow column."""
    exact = {"actor": AuditEntry.actor, "resource_type": AuditEntry.resource_type,
             "resource": AuditEntry.resource_ref, "action": AuditEntry.action,
             "outcome": AuditEntry.outcome, "request_id": AuditEntry.request_id}
    for name, column in exact.items():
        if args.get(name):
            query = query.where(column == args[name])
    since: datetime | None = args.get("since")
    until: datetime | None = args.get("until")
    if since is not None:
        query = query.where(AuditEntry.created_at >= since)
    if until is not None:
        query = query.where(AuditEntry.created_at < until)
    return query


def audit_query(args: dict[str, Any]) -> Select:
    query = filter_audit(select(AuditEntry), args)
    return query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
