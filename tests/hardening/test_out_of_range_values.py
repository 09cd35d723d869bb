"""Values beyond what PostgreSQL or Python can hold: ids past bigint in a URL are simply not
there (404, they answered 422 "not storable"), and an API key expiring after the year 9999
is refused naming `expires_at` (it answered an anonymous 422)."""

from __future__ import annotations

import pytest

from app.models import ApiKey
from tests.hardening.helpers import assert_error

BEYOND_BIGINT = [2**63, 2**70]


@pytest.mark.parametrize("row_id", BEYOND_BIGINT)
@pytest.mark.parametrize("method, template", [
    ("GET", "/api/v1/identities/{}"), ("PATCH", "/api/v1/identities/{}"), ("DELETE", "/api/v1/identities/{}"),
    ("POST", "/api/v1/identities/{}/enable"), ("POST", "/api/v1/identities/{}/disable"),
    ("GET", "/api/v1/apikeys/{}"), ("DELETE", "/api/v1/apikeys/{}"),
])
def test_an_id_beyond_bigint_is_a_404(api, method, template, row_id):
    kwargs = {"json": {}} if method == "PATCH" else {}
    assert_error(api.request(method, template.format(row_id), **kwargs), 404)


def test_an_api_key_expiring_after_the_year_9999_is_a_422_naming_expires_at(api, count_rows):
    before = count_rows(ApiKey)
    response = api.post("/api/v1/apikeys", json={"name": "far", "expires_at": "9999-12-31T23:59:59-14:00"})
    assert list(assert_error(response, 422)["errors"]) == ["expires_at"]
    assert count_rows(ApiKey) == before


@pytest.mark.parametrize("method, url", [
    ("GET", "/api/v1/roles/a%00b"), ("DELETE", "/api/v1/roles/a%00b"),
    ("DELETE", "/api/v1/identities/{identity}/roles/a%00b"),
])
def test_a_role_named_with_a_nul_is_not_there(api, create_identity, method, url):
    # It answered 422 "not storable": the NUL reached PostgreSQL's comparison.
    bob = create_identity("bob").id
    body = assert_error(api.request(method, url.format(identity=bob)), 404)
    assert "does not exist" in body["message"]
