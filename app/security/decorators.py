from __future__ import annotations

import functools
from collections.abc import Callable
from copy import deepcopy
from http import HTTPStatus
from typing import Any

from flask import g

from app.errors import Forbidden, Unauthorized
from app.security.authenticate import authenticate
from app.security.permissions import PERMISSIONS, is_pack_scopable
from app.security.principal import Principal

SECURITY = [{"bearerAuth": []}, {"apiKeyAuth": []}]


def _document(func: Callable, **doc: Any) -> None:
    # Same mechanism flask-smorest's Blueprint.doc uses, so the spec shows it.
    func._apidoc = deepcopy(getattr(func, "_apidoc", {}))  # type: ignore[attr-defined]
    manual = func._apidoc.setdefault("manual_doc", {})  # type: ignore[attr-defined]
    manual.update(doc)


def _document_errors(func: Callable, *statuses: int) -> None:
    # The same place flask-smorest's alt_response writes, naming its shared error responses.
    responses = func._apidoc.setdefault("response", {}).setdefault("responses", {})  # type: ignore[attr-defined]
    for status in statuses:
        if status not in responses:
            responses[status] = [HTTPStatus(status).name]


def pack_of(ref: str | None) -> str | None:
    if not ref:
        return None
    return ref.split(".", 1)[0]


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        raise Unauthorized("Authentication is required.")
    return principal


def requires(permission: str, *, pack_from: str | None = "ref") -> Callable:
    """Authenticate the caller and require ``permission``.

    ``pack_from`` names the view argument holding a ``<pack>.<name>`` ref (or a pack name)
    that a pack-scoped grant must match; without it a pack-scoped grant lets the call
    through and the view filters (lists) or checks the loaded object itself.
    """
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal_or_401()
            g.principal = principal
            pack = pack_of(kwargs.get(pack_from)) if pack_from and pack_from in kwargs else None
            allowed = (
                principal.can(permission, pack) if pack and is_pack_scopable(permission)
                else principal.can(permission) if not is_pack_scopable(permission)
                else principal.can_any(permission)
            )
            if not allowed:
                raise Forbidden(f"This needs the {permission} permission.", {"permission": permission})
            g.permission = permission
            return func(*args, **kwargs)

        wrapper._permission = permission  # type: ignore[attr-defined]
        _document(wrapper, security=SECURITY, **{"x-permission": permission})
        wrapper._apidoc["manual_doc"]["description"] = (  # type: ignore[attr-defined]
            (func.__doc__ or "").strip().split("\n\n", 1)[-1] if "\n\n" in (func.__doc__ or "") else ""
        ) + f"\n\nRequires the `{permission}` permission."
        _document_errors(wrapper, 401, 403)
        return wrapper

    return decorator


def run_token_accepted(func: Callable) -> Callable:
    """Document that a python action's or sensor poll's run token (``X-Auth-Token``, app/security/
    run_tokens.py) is accepted here too. Put it above ``@requires``."""
    _document(func, security=[*SECURITY, {"runTokenAuth": []}])
    return func


def authenticated(func: Callable) -> Callable:
    """Any authenticated identity may call this (one's own session, profile, password)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.principal = current_principal_or_401()
        return func(*args, **kwargs)

    wrapper._permission = None  # type: ignore[attr-defined]
    wrapper._authenticated = True  # type: ignore[attr-defined]
    _document(wrapper, security=SECURITY, **{"x-permission": "authenticated"})
    wrapper._apidoc["manual_doc"]["description"] = (  # type: ignore[attr-defined]
        (func.__doc__ or "").strip().split("\n\n", 1)[-1] if "\n\n" in (func.__doc__ or "") else ""
    ) + "\n\nAny authenticated identity may call this; no permission is needed."
    _document_errors(wrapper, 401)
    return wrapper


def current_principal_or_401() -> Principal:
    principal = authenticate()
    if principal is None:
        raise Unauthorized(
            "Authentication is required: send a bearer token or an X-API-Key header.",
            headers={"WWW-Authenticate": 'Bearer realm="patchbay"'},
        )
    return principal


def public(func: Callable) -> Callable:
    """Mark a view as answering without credentials (documented as such)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    wrapper._permission = None  # type: ignore[attr-defined]
    wrapper._public = True  # type: ignore[attr-defined]
    _document(wrapper, security=[])
    return wrapper


def ensure_pack_permission(permission: str, pack: str) -> None:
    """For views whose pack is only known after loading the object (executions by id)."""
    if not current_principal().can(permission, pack):
        raise Forbidden(f"This needs the {permission} permission.", {"permission": permission})
