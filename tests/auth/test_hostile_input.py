"""Malformed input to the auth endpoints is a 4xx in the one error shape, never a 5xx."""

from __future__ import annotations

import pytest

CASES = [
    ("POST", "/api/v1/auth/login", {"data": "not json", "content_type": "application/json"}),
    ("POST", "/api/v1/auth/login", {"json": {"username": "x" * 5000, "password": "y"}}),
    ("POST", "/api/v1/auth/login", {"json": {"username": ["list"], "password": {"a": 1}}}),
    ("POST", "/api/v1/auth/login", {"json": {"username": "a", "password": "b", "extra": 1}}),
    ("POST", "/api/v1/auth/refresh", {"json": {"refresh_token": "garbage"}}),
    ("POST", "/api/v1/auth/refresh", {"json": {"refresh_token": "a.b.c"}}),
    ("POST", "/api/v1/auth/refresh", {"json": {}}),
    ("POST", "/api/v1/auth/logout", {"json": {"refresh_token": 12}}),
    ("POST", "/api/v1/auth/password", {"json": {"old_password": "", "new_password": None}}),
    ("POST", "/api/v1/apikeys", {"json": {"name": "", "permissions": "actions:view"}}),
    ("POST", "/api/v1/apikeys", {"json": {"name": "k", "expires_at": "tomorrow"}}),
    ("POST", "/api/v1/apikeys", {"json": {"name": "k", "expires_at": "2030-01-01T00:00:00"}}),
    ("POST", "/api/v1/apikeys", {"json": {"name": "k", "owner": "nobody-here"}}),
    ("GET", "/api/v1/apikeys?include_revoked=maybe", {}),
    ("POST", "/api/v1/identities", {"json": {"name": "bad name with spaces"}}),
    ("POST", "/api/v1/identities", {"json": {"name": "ok", "email": "not-an-email"}}),
    ("POST", "/api/v1/identities", {"json": {"name": "ok2", "roles": ["no-such-role"]}}),
    ("POST", "/api/v1/identities", {"json": {"name": "ok3", "kind": "robot"}}),
    ("GET", "/api/v1/identities?sort=password_hash", {}),
    ("POST", "/api/v1/identities/1/roles", {"json": {"role": ""}}),
    ("POST", "/api/v1/roles", {"json": {"name": "permissions"}}),
    ("POST", "/api/v1/roles", {"json": {"name": "r", "grants": [{"permission": 5}]}}),
    ("POST", "/api/v1/roles", {"json": {"name": "r", "grants": "all"}}),
    ("DELETE", "/api/v1/roles/viewer/permissions", {}),
    ("POST", "/api/v1/roles/admin/permissions", {"json": {"permission": "actions:view", "pack": "../etc"}}),
    ("GET", "/api/v1/audit?since=2026-01-01T00:00:00", {}),
    ("GET", "/api/v1/audit?outcome=maybe", {}),
    ("GET", "/api/v1/audit?page_size=100000", {}),
]


@pytest.mark.parametrize(("method", "url", "kwargs"), CASES, ids=[f"{m} {u}" for m, u, _ in CASES])
def test_bad_input_is_a_4xx_in_the_error_shape(api, method, url, kwargs):
    answer = api.request(method, url, **kwargs)
    assert 400 <= answer.status_code < 500, answer.get_data(as_text=True)
    assert set(answer.json) == {"code", "status", "message", "errors"}
    assert "Traceback" not in answer.get_data(as_text=True)
