"""Authentication and authorisation: each endpoint declares its permission once.

``@requires("actions:view")`` on a view authenticates the caller (JWT bearer token,
``X-API-Key``, or on the keys endpoints a run token in ``X-Auth-Token``), checks the permission (against the pack in the ``ref`` URL argument, if the
permission is pack-scopable) and documents both in the OpenAPI operation.
``@authenticated`` admits any identity (one's own session and password); ``@public`` marks
the few endpoints that need no credentials. A test enumerates every route and fails on any
view that declares none of these. ``install_security`` adds the login rate limiter and the
audit hook to an app.
"""

from app.security.decorators import authenticated, current_principal, public, requires
from app.security.principal import Principal

__all__ = ["Principal", "authenticated", "current_principal", "public", "requires"]
