"""Authentication and authorisation: each endpoint declares its permission once.

``@requires("actions:view")`` on a view authenticates the caller (JWT bearer token or
``X-API-Key``), checks the permission (against the pack in the ``ref`` URL argument, if the
permission is pack-scopable) and documents both in the OpenAPI operation. ``@public`` marks
the few endpoints that need no credentials. A test enumerates every route and fails on any
view that declares neither.
"""

from app.security.decorators import current_principal, public, requires
from app.security.principal import Principal

__all__ = ["Principal", "current_principal", "public", "requires"]
