"""Security headers on every answer, a CSP that Swagger UI on /docs can live with, HSTS over HTTPS."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from tests.auth.conftest import behind_one_proxy, proxied_app  # noqa: F401 - fixtures

FIXED = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def assert_headers(response) -> None:
    for name, value in FIXED.items():
        assert response.headers.get(name) == value, (response.status_code, name)
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


@pytest.mark.parametrize("method, path, kwargs, status", [
    ("GET", "/health", {}, 200),
    ("GET", "/api/v1/actions", {}, 401),
    ("GET", "/api/v1/no-such-thing", {}, 404),
    ("PUT", "/health", {}, 405),
    ("POST", "/api/v1/auth/login", {"data": b"x" * (2 * 1024 * 1024), "content_type": "application/json"}, 413),
    ("GET", "/api/v1/openapi.json", {}, 200),
    ("GET", "/docs/assets/swagger-ui.css", {}, 200),
])
def test_every_answer_carries_the_security_headers(anonymous, method, path, kwargs, status):
    response = anonymous.request(method, path, **kwargs)
    assert response.status_code == status
    assert_headers(response)
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'; frame-ancestors 'none'")
    assert "Strict-Transport-Security" not in response.headers


def test_an_internal_error_carries_them_too(db_session):
    from app import create_app

    other = create_app()

    @other.get("/__boom")
    def boom():
        raise RuntimeError("boom")

    response = other.test_client().get("/__boom")
    assert response.status_code == 500
    assert_headers(response)


def test_docs_policy_lets_swagger_ui_run_from_patchbays_own_origin(anonymous):
    page = anonymous.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert_headers(page)
    policy = directives(page.headers["Content-Security-Policy"])
    html = page.get_data()
    # Every script and stylesheet the page loads is a path on this origin, and is served.
    assets = re.findall(rb'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 3
    for asset in assets:
        url = asset.decode()
        assert url.startswith("/") and not url.startswith("//"), url
        loaded = anonymous.get(url)
        assert loaded.status_code == 200 and len(loaded.get_data()) > 1000, url
    assert b"http://" not in html and b"https://" not in html
    # The one inline script runs because its hash is allowed, not because inline code is.
    (inline,) = re.findall(rb"<script>(.*?)</script>", html, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline).digest()).decode()
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert policy["connect-src"] == ["'self'"] and policy["img-src"] == ["'self'", "data:"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["default-src"] == ["'none'"]
    # Swagger UI's validator badge would be an image from swagger.io.
    assert b'"validatorUrl": null' in inline


def test_hsts_only_when_the_request_came_over_https(app, anonymous):
    secure = app.test_client().get("/health", base_url="https://patchbay.example")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in anonymous.get("/health").headers
    # With no trusted proxy, a client cannot claim HTTPS.
    claimed = anonymous.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in claimed.headers


def test_behind_a_trusted_proxy_its_forwarded_proto_counts(behind_one_proxy):  # noqa: F811
    client = behind_one_proxy()
    over_https = client.get("/health", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"})
    assert "max-age=31536000" in over_https.headers["Strict-Transport-Security"]
    over_http = client.get("/health", headers={"X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.5"})
    assert "Strict-Transport-Security" not in over_http.headers
