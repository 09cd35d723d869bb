"""Trust at the edge: which proxy hops to believe, and the headers every answer carries."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

DOCS_PATH = "/docs"
# The API answers JSON only: nothing in it may load, run or frame anything.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI, served from Patchbay's own origin: its bundle and CSS, the page's one inline
# script (allowed by its hash), the inline styles React sets, data: icons from its CSS, and
# fetches of the OpenAPI document and "Try it out" calls back to the API.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
# A year, as HSTS preload lists expect; sent only on answers that came over HTTPS.
HSTS = "max-age=31536000; includeSubDomains"
FIXED_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def install_edge(app: Flask) -> None:
    """Believe ``PROXY_HOPS`` proxies' forwarding headers, and add the security headers."""
    hops = int(app.config.get("PROXY_HOPS") or 0)
    if hops > 0:
        # Each trusted proxy appends one address; only the last ``hops`` entries are theirs,
        # anything before them was written by the client and is ignored.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    """The header policy, on every answer (errors included)."""
    for name, value in FIXED_HEADERS.items():
        response.headers[name] = value
    response.headers["Content-Security-Policy"] = content_security_policy(response)
    # request.is_secure reads the scheme ProxyFix took from a trusted X-Forwarded-Proto.
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def content_security_policy(response: Response) -> str:
    if request.path != DOCS_PATH or response.mimetype != "text/html":
        return API_POLICY
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
              for script in INLINE_SCRIPT.findall(response.get_data())]
    return DOCS_POLICY.format(scripts=" ".join(hashes))


def close_oversized_connection(worker: Any, req: Any) -> None:
    """gunicorn ``pre_request`` hook: a body over the limit gets ``Connection: close``.

    Patchbay refuses such a body (413) without reading it; gunicorn would otherwise announce
    keep-alive, find the unread bytes and drop the connection under the client's next request.
    gunicorn ignores a Connection header set by the application, hence a server hook.
    """
    config = getattr(worker.wsgi, "config", None) or {}
    limit = config.get("MAX_CONTENT_LENGTH")
    if not limit:
        return
    for name, value in req.headers:
        if name == "CONTENT-LENGTH":
            try:
                too_large = int(value) > limit
            except ValueError:
                too_large = True
            if too_large:
                req.force_close()
            return
