"""What each registered route declares: public, any authenticated identity, or a permission.

The audit log names the permission a call needed, and the authorisation test walks every
route with this, so a view that declares nothing is caught.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

# Views Flask and flask-smorest register themselves; install_security marks them public.
FRAMEWORK_PUBLIC_ENDPOINTS = ("api-docs.openapi_json", "api-docs.openapi_swagger_ui")


@dataclass(frozen=True)
class Access:
    public: bool
    authenticated: bool
    permission: str | None

    @property
    def declared(self) -> bool:
        return self.public or self.authenticated or self.permission is not None


def handler_for(app: Flask, endpoint: str, method: str) -> Callable | None:
    """The function that answers ``method`` on ``endpoint`` (a MethodView's method, or the view)."""
    view = app.view_functions.get(endpoint)
    if view is None:
        return None
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return getattr(view_class, method.lower(), None)
    return view


def access_of(handler: Callable | None) -> Access:
    return Access(
        public=bool(getattr(handler, "_public", False)),
        authenticated=bool(getattr(handler, "_authenticated", False)),
        permission=getattr(handler, "_permission", None),
    )


def declared_access(app: Flask, endpoint: str | None, method: str) -> Access:
    if not endpoint:
        return Access(public=False, authenticated=False, permission=None)
    return access_of(handler_for(app, endpoint, method))


def mark_public(func: Callable) -> None:
    # Framework views are bound methods; their attributes live on the function.
    target = getattr(func, "__func__", func)
    target._public = True
    target._permission = None
