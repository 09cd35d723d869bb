"""Every route the app registers, checked for authentication and authorisation.

Everything is derived from ``app.url_map``, so an endpoint added later without a declared
permission (``@requires``), ``@authenticated`` or ``@public`` fails this suite, and so does a
protected one that answers without credentials or with the wrong permission.
"""

from __future__ import annotations

import re

import pytest

from app.security.permissions import PERMISSIONS
from app.security.routes import declared_access, handler_for

# The only routes that may answer without credentials.
ALLOWED_PUBLIC = [
    r"/health", r"/ready", r"/metrics",
    r"/docs", r"/docs/assets/.*", r"/api/v1/openapi\.json",
    r"/api/v1/auth/login", r"/api/v1/auth/refresh",
    # Off unless ALLOW_REGISTRATION; then it creates a role-less identity.
    r"/api/v1/auth/register",
]
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
BODY_METHODS = {"POST", "PUT", "PATCH"}


def all_routes(app):
    """(rule, method, Access) for every route and method, sorted for stable messages."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for method in sorted(rule.methods - SKIPPED_METHODS):
            yield rule, method, declared_access(app, rule.endpoint, method)


def per_webhook(app, rule, method: str) -> bool:
    """The webhook route: the webhook named in its url decides who may post (checked below)."""
    return bool(getattr(handler_for(app, rule.endpoint, method), "_per_webhook", False))


def plausible_url(rule) -> str:
    """The rule with every argument filled by a well-formed value naming nothing that exists."""

    def value(match: re.Match) -> str:
        converter = match.group(1) or ""
        return "987654321" if converter.startswith(("int", "float")) else "nosuchpack.nosuchthing"

    return re.sub(r"<(?:([^:<>]+):)?[^<>]+>", value, rule.rule)


def call(client, method: str, url: str, headers: dict[str, str] | None = None):
    kwargs = {"json": {}} if method in BODY_METHODS else {}
    return client.open(url, method=method, headers=headers or {}, **kwargs)


@pytest.fixture
def holder_of(create_identity, create_role, token_for):
    """holder_of("actions:view") -> headers of a fresh token for someone holding just that;
    holder_of("actions:view", invert=True) -> someone holding every permission but that."""
    identities: dict[tuple[str, bool], object] = {}

    def headers(permission: str | None, invert: bool = False) -> dict[str, str]:
        key = (permission or "", invert)
        if key not in identities:
            if permission is None:
                grants = []
            elif invert:
                grants = [(p, None) for p in PERMISSIONS if p != permission]
            else:
                grants = [(permission, None)]
            identities[key] = create_identity(roles=[create_role(grants)] if grants else [])
        # A fresh token each time: some calls (logout) revoke the one they were made with.
        return token_for(identities[key])

    return headers


def test_every_route_declares_who_may_call_it(app):
    undeclared = [f"{method} {rule.rule} ({rule.endpoint})" for rule, method, access in all_routes(app)
                  if not access.declared]
    assert undeclared == [], "Declare @requires(<permission>), @authenticated or @public on these views"


def test_every_declared_permission_is_in_the_catalogue(app):
    unknown = [f"{method} {rule.rule}: {access.permission}" for rule, method, access in all_routes(app)
               if access.permission is not None and access.permission not in PERMISSIONS]
    assert unknown == []


def test_only_the_allowed_routes_are_public(app):
    public = [rule.rule for rule, _, access in all_routes(app) if access.public]
    unexpected = [path for path in public if not any(re.fullmatch(p, path) for p in ALLOWED_PUBLIC)]
    assert unexpected == []
    assert {"/health", "/api/v1/openapi.json", "/docs", "/api/v1/auth/login", "/api/v1/auth/refresh"} <= set(public)


def test_public_routes_answer_without_credentials(app, anonymous):
    refused = []
    for rule, method, access in all_routes(app):
        if access.public:
            answer = call(anonymous.client, method, plausible_url(rule))
            if answer.status_code in (401, 403):
                refused.append(f"{method} {rule.rule} -> {answer.status_code}")
    assert refused == []


def test_anonymous_callers_get_401_on_every_protected_route(app, anonymous):
    wrong = []
    for rule, method, access in all_routes(app):
        if access.public or not access.declared or per_webhook(app, rule, method):
            continue
        answer = call(anonymous.client, method, plausible_url(rule))
        if answer.status_code != 401 or set(answer.json or {}) != {"code", "status", "message", "errors"}:
            wrong.append(f"{method} {rule.rule} -> {answer.status_code}")
    assert wrong == []


def test_each_permission_is_required_and_sufficient(app, anonymous, holder_of):
    """Everything but the permission -> 403; just the permission -> past authorisation."""
    wrong = []
    checked = 0
    for rule, method, access in all_routes(app):
        if access.permission is None or per_webhook(app, rule, method):
            continue
        url = plausible_url(rule)
        without = call(anonymous.client, method, url, holder_of(access.permission, invert=True))
        if without.status_code != 403:
            wrong.append(f"{method} {rule.rule} without {access.permission} -> {without.status_code}")
        with_it = call(anonymous.client, method, url, holder_of(access.permission))
        if with_it.status_code in (401, 403):
            wrong.append(f"{method} {rule.rule} with {access.permission} -> {with_it.status_code}")
        checked += 1
    assert wrong == []
    assert checked > 30


def test_authenticated_only_routes_need_no_role(app, anonymous, holder_of):
    wrong = []
    for rule, method, access in all_routes(app):
        if access.authenticated:
            answer = call(anonymous.client, method, plausible_url(rule), holder_of(None))
            if answer.status_code in (401, 403):
                wrong.append(f"{method} {rule.rule} -> {answer.status_code}")
    assert wrong == []


def test_the_openapi_document_shows_security_and_each_operations_permission(app, anonymous):
    spec = anonymous.get("/api/v1/openapi.json").json
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["apiKeyAuth"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    wrong = []
    for rule, method, access in all_routes(app):
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        operation = spec["paths"].get(path, {}).get(method.lower())
        if operation is None:
            if rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1/openapi.json":
                wrong.append(f"{method} {rule.rule} is not documented")
            continue
        if access.public:
            ok = operation.get("security") == []
        else:
            expected = access.permission or "authenticated"
            ok = operation.get("x-permission") == expected and {"bearerAuth": []} in operation.get("security", [])
        if not ok:
            wrong.append(f"{method} {rule.rule}: security={operation.get('security')} "
                         f"x-permission={operation.get('x-permission')}")
    assert wrong == []


def test_the_webhook_route_admits_whom_each_webhook_declares(app, anonymous, holder_of, create_pack, create_action):
    """No webhook at the url: 404 for anyone. A webhook declaring no mode: Patchbay credentials
    with webhooks:post. A token webhook: its token, with no Patchbay identity at all."""
    from app.db import db
    from app.services.pack_loader import register_pack
    from app.services.rules import create_rule

    create_pack("hooks", config_schema={"token": {"type": "string", "secret": True}}, config={"token": "t0ken"})
    create_action("hooks.run")
    with app.app_context():
        register_pack("core")
        for name, parameters in (("plain", {"url": "plain"}),
                                 ("tokened", {"url": "tokened", "auth": "token", "secret_key": "token"})):
            create_rule({"pack_name": "hooks", "name": name, "trigger": "core.webhook", "action": "hooks.run",
                         "trigger_parameters": parameters})
        db.session.commit()
    routes = [(rule, method, access) for rule, method, access in all_routes(app) if per_webhook(app, rule, method)]
    assert [(rule.rule, method) for rule, method, _ in routes] == [("/api/v1/webhooks/<path:url>", "POST")]
    for rule, method, access in routes:
        assert access.permission == "webhooks:post" and not access.public
        post = rule.rule.replace("<path:url>", "{}")
        assert call(anonymous.client, method, plausible_url(rule), holder_of("webhooks:post")).status_code == 404
        assert call(anonymous.client, method, post.format("plain")).status_code == 401
        assert call(anonymous.client, method, post.format("plain"), holder_of("webhooks:post", invert=True)).status_code == 403
        assert call(anonymous.client, method, post.format("plain"), holder_of("webhooks:post")).status_code == 202
        assert call(anonymous.client, method, post.format("tokened")).status_code == 401
        assert call(anonymous.client, method, post.format("tokened"), {"X-Webhook-Token": "t0ken"}).status_code == 202
