"""Identity and role names: checked to their very end ("$" in a pattern also matches
before a trailing newline, so "bob\\n" used to be accepted as a user name)."""

from __future__ import annotations

import pytest

from app.models import Identity, Role
from tests.hardening.helpers import assert_error


@pytest.mark.parametrize("url, body, field", [
    ("/api/v1/identities", {"name": "bob\n", "password": "long-enough-password-1"}, "name"),
    ("/api/v1/auth/register", {"username": "bob\n", "password": "long-enough-password-1"}, "username"),
    ("/api/v1/roles", {"name": "ops\n"}, "name"),
])
def test_a_trailing_newline_in_a_name_is_a_422(api, app, count_rows, url, body, field):
    app.config["ALLOW_REGISTRATION"] = True
    try:
        before = count_rows(Identity, Role)
        response = api.post(url, json=body)
    finally:
        app.config["ALLOW_REGISTRATION"] = False
    assert field in assert_error(response, 422)["errors"]
    assert count_rows(Identity, Role) == before


def test_assigning_a_role_named_with_a_newline_is_a_422(api, create_identity):
    bob = create_identity("bob").id
    response = api.post(f"/api/v1/identities/{bob}/roles", json={"role": "admin\n"})
    assert "role" in assert_error(response, 422)["errors"]
    assert api.get(f"/api/v1/identities/{bob}").get_json()["roles"] == []

