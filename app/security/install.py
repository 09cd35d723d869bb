"""Wire the security pieces into an app: rate limiter, framework routes (the audit hook, a
service, is installed by create_app: security never imports services)."""

from __future__ import annotations

from flask import Flask

from app.security.auth_cache import track_changes
from app.security.ratelimit import install_rate_limiter
from app.security.routes import FRAMEWORK_PUBLIC_ENDPOINTS, mark_public


def install_security(app: Flask) -> None:
    """Call once the blueprints are registered."""
    install_rate_limiter(app)
    # Every process that writes identities, keys or roles tells the web processes' caches.
    track_changes(app.config["REDIS_URL"])
    # The OpenAPI document, Swagger UI and Flask's static route answer without credentials.
    for endpoint in FRAMEWORK_PUBLIC_ENDPOINTS:
        if endpoint in app.view_functions:
            mark_public(app.view_functions[endpoint])
