"""Text PostgreSQL cannot store (NUL, unpaired surrogates) is refused where it is parsed:
a 422 naming the field, nothing written — before, a lone surrogate reached psycopg and
answered 500, and a NUL answered an anonymous "not storable"."""

from __future__ import annotations

import pytest

from app.models import Action, ApiKey, Identity, Role
from tests.hardening.helpers import assert_error


def send(client, method: str, url: str, raw_json: str):
    # Raw text: "\ud800" must reach the server as the JSON escape, as a client would send it.
    return client.request(method, url, data=raw_json, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("raw, errors", [
    ('{"pack": "acme", "name": "a", "runner_type": "noop", "description": "\\ud800"}',
     {"description": ["Must be valid Unicode (no unpaired surrogates)."]}),
    ('{"pack": "acme", "name": "a", "runner_type": "noop", "description": "x\\u0000y"}',
     {"description": ["Must not contain NUL characters."]}),
    ('{"pack": "acme", "name": "a", "runner_type": "noop", "tags": ["ok", "\\udfff"]}',
     {"tags": {"1": ["Must be valid Unicode (no unpaired surrogates)."]}}),
    ('{"pack": "acme", "name": "a", "runner_type": "noop", "parameters": {"x": {"type": "string", "default": "\\u0000"}}}',
     {"parameters": {"x": {"default": ["Must not contain NUL characters."]}}}),
    ('{"pack": "acme", "name": "a", "runner_type": "noop", "parameters": {"a\\u0000": {"type": "string"}}}',
     {"parameters": {"a\\x00": ["Field names: must not contain NUL characters."]}}),
])
def test_unstorable_text_in_a_body_is_a_422_naming_the_field(api, create_pack, count_rows, raw, errors):
    create_pack("acme")
    before = count_rows(Action)
    body = assert_error(send(api, "POST", "/api/v1/actions", raw), 422)
    assert body["errors"] == errors
    assert count_rows(Action) == before


def test_an_update_with_a_lone_surrogate_changes_nothing(api, create_action):
    create_action("acme.hello", description="kept")
    body = assert_error(send(api, "PATCH", "/api/v1/actions/acme.hello", '{"description": "\\ud83d"}'), 422)
    assert list(body["errors"]) == ["description"]
    assert api.get("/api/v1/actions/acme.hello").get_json()["description"] == "kept"


def test_identities_roles_and_keys_refuse_surrogates_without_writing(api, count_rows):
    # These three answered 500: the surrogate reached psycopg, which cannot encode it.
    before = count_rows(Identity, Role, ApiKey)
    assert_error(send(api, "POST", "/api/v1/identities",
                      '{"name": "bob", "display_name": "\\ud800", "password": "long-enough-password-1"}'), 422)
    assert_error(send(api, "POST", "/api/v1/roles", '{"name": "ops", "description": "\\udc00"}'), 422)
    assert_error(send(api, "POST", "/api/v1/apikeys", '{"name": "\\udc00"}'), 422)
    assert count_rows(Identity, Role, ApiKey) == before


@pytest.mark.parametrize("url, field", [
    ("/api/v1/audit?actor=a%00b", "actor"),
    ("/api/v1/audit?resource=%00", "resource"),
    ("/api/v1/identities?q=x%00", "q"),
    ("/api/v1/apikeys?owner=%00", "owner"),
])
def test_a_nul_in_the_query_string_is_a_422_naming_the_parameter(api, url, field):
    body = assert_error(api.get(url), 422)
    assert body["errors"] == {field: ["Must not contain NUL characters."]}


def test_login_with_a_lone_surrogate_or_absurd_nesting_is_a_4xx(anonymous):
    # The login rate limiter reads the username before the view: it used to raise on both.
    surrogate = send(anonymous, "POST", "/api/v1/auth/login", '{"username": "\\ud800", "password": "\\ud800"}')
    assert list(assert_error(surrogate, 422)["errors"]) == ["username"]
    nested = '{"username": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + ', "password": "x"}'
    assert_error(send(anonymous, "POST", "/api/v1/auth/login", nested), 400)
