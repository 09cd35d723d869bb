"""The OpenAPI document tells the truth about answers: the error statuses each operation can
give, nullable fields, and the X-Pagination header (JSON, so described with `content`)."""

from __future__ import annotations

import json

import pytest

from tests.hardening.helpers import assert_error

SPEC_URL = "/api/v1/openapi.json"


@pytest.fixture
def spec(anonymous):
    return anonymous.get(SPEC_URL).get_json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield f"{method.upper()} {path}", path, operation


def test_every_protected_operation_documents_401_and_403(spec):
    for label, _path, operation in operations(spec):
        permission = operation.get("x-permission")
        if permission is None:
            continue
        expected = {"401"} if permission == "authenticated" else {"401", "403"}
        assert expected <= set(operation["responses"]), label


def test_every_operation_with_a_path_parameter_documents_404(spec):
    for label, path, operation in operations(spec):
        if "{" in path:
            assert "404" in operation["responses"], label


def test_the_documented_401_403_404_are_the_error_shape(spec):
    for status in ("UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND"):
        schema = spec["components"]["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}


def test_x_pagination_is_documented_as_json_and_is_json(api, spec, create_pack):
    create_pack("acme")
    header = spec["paths"]["/api/v1/packs"]["get"]["responses"]["200"]["headers"]["X-Pagination"]
    assert "schema" not in header
    properties = header["content"]["application/json"]["schema"]["properties"]
    response = api.get("/api/v1/packs?page_size=1")
    metadata = json.loads(response.headers["X-Pagination"])
    assert metadata["total"] >= 1 and set(metadata) <= set(properties)


@pytest.mark.parametrize("schema, field", [
    ("Trigger", "source_file"), ("Sensor", "source_file"), ("Sensor", "last_polled_at"),
    ("Action", "source_file"), ("Rule", "source_file"), ("Pack", "path"),
    ("Inquiry", "response"), ("Inquiry", "expires_at"), ("Inquiry", "ttl"), ("Inquiry", "responded_at"),
])
def test_fields_that_can_be_null_are_documented_nullable(spec, schema, field):
    assert spec["components"]["schemas"][schema]["properties"][field].get("nullable") is True


def test_content_created_through_the_api_answers_those_nulls(api, create_pack):
    create_pack("acme")
    trigger = api.post("/api/v1/triggers", json={"pack": "acme", "name": "hook"})
    sensor = api.post("/api/v1/sensors", json={"pack": "acme", "name": "poll", "class_name": "Poller",
                                               "entry_point": "sensors/poll.py"})
    pack = api.post("/api/v1/packs", json={"name": "made"})
    assert (trigger.status_code, sensor.status_code, pack.status_code) == (201, 201, 201)
    assert trigger.get_json()["source_file"] is None
    assert sensor.get_json()["last_polled_at"] is None and sensor.get_json()["source_file"] is None
    assert pack.get_json()["path"] is None


def test_an_anonymous_call_gets_the_documented_401(anonymous):
    assert_error(anonymous.get("/api/v1/packs"), 401)


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/password"])
def test_rate_limited_operations_document_429(spec, path):
    assert "429" in spec["paths"][path]["post"]["responses"]
