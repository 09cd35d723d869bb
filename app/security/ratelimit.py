"""Login rate limiting (flask-limiter, counters in Redis so every web process shares them)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import parse_many

from app.config import ConfigError
from app.errors import error_response

KEY_PREFIX = "patchbay:ratelimit"


def client_address() -> str:
    """The caller's address: the peer, or what the PROXY_HOPS trusted proxies say it is."""
    # Never X-Forwarded-For read here: a client writes whatever it likes in it. ProxyFix
    # (app.security.edge) puts the address the trusted proxies saw into remote_addr.
    return (request.remote_addr or "unknown")[:64]


def attempted_username() -> str:
    # Limiting per account too stops a password guesser who rotates addresses.
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the decoder goes: the view answers 400
        body = None
    name = body.get("username") if isinstance(body, dict) else None
    if not name:
        return "user:-"
    # Hashed: a password typed into the username field must not sit in Redis in clear.
    # surrogatepass: JSON can spell an unpaired surrogate, which plain UTF-8 cannot encode.
    return "user:" + hashlib.sha256(str(name).strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:32]


def login_rate() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


limiter = Limiter(key_func=client_address, key_prefix=KEY_PREFIX, headers_enabled=True)

RATE_LIMITED = "_patchbay_rate_limited"  # marks a view that carries a limit


def _marking(decorator: Callable[[Callable], Callable]) -> Callable[[Callable], Callable]:
    """``decorator`` (a flask-limiter limit) that also marks the view it limits; the mark
    survives the decorators stacked above it (functools.wraps copies it)."""

    def apply(view: Callable) -> Callable:
        limited = decorator(view)
        setattr(limited, RATE_LIMITED, True)
        return limited

    return apply


# Stack both on a view: attempts per client address and per attempted username.
limit_per_address = _marking(limiter.limit(login_rate, key_func=client_address, methods=["POST"]))
limit_per_username = _marking(limiter.limit(login_rate, key_func=attempted_username, methods=["POST"]))


@limiter.request_filter
def _carries_no_limit() -> bool:
    """flask-limiter's request filter: only the views marked above carry limits (there are
    no default or application-wide ones), so every other request skips the lookup of its
    limits — about 4 % of an execute request's CPU, for nothing."""
    view = current_app.view_functions.get(request.endpoint or "")
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), view)
    return not getattr(handler, RATE_LIMITED, False)


def install_rate_limiter(app: Flask) -> None:
    try:
        parse_many(app.config["LOGIN_RATE_LIMIT"])
    except ValueError as exc:
        # Found at start-up, not at the first login.
        raise ConfigError(f"LOGIN_RATE_LIMIT is invalid: {exc} (e.g. '10 per minute')") from None
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def too_many_requests(exc: RateLimitExceeded):
        current = limiter.current_limit
        retry_after = max(int(current.reset_at - time.time()), 1) if current else 60
        return error_response(
            429, f"Too many attempts ({exc.description}); try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )
