"""Every error, whatever caused it, has the one shape and never a traceback."""

from __future__ import annotations

import pytest

from app.errors import error_body

SHAPE = {"code", "status", "message", "errors"}


def assert_error(response, code: int) -> dict:
    assert response.status_code == code, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == SHAPE
    assert body["code"] == code
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_unknown_route_is_404(api):
    body = assert_error(api.get("/api/v1/no-such-thing"), 404)
    assert body["status"] == "Not Found"


def test_unknown_ref_is_404(api):
    body = assert_error(api.get("/api/v1/actions/nope.nothing"), 404)
    assert "nope.nothing" in body["message"]


def test_wrong_method_is_405_with_allow(api):
    response = api.put("/api/v1/actions", json={})
    assert_error(response, 405)
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


def test_body_over_the_limit_is_413(api, app, create_pack):
    create_pack("big")
    payload = {"pack": "big", "name": "x", "runner_type": "noop", "description": "a" * (app.config["MAX_CONTENT_LENGTH"] + 10)}
    body = assert_error(api.post("/api/v1/actions", json=payload), 413)
    assert str(app.config["MAX_CONTENT_LENGTH"]) in body["message"]
    assert api.get("/api/v1/actions/big.x").status_code == 404


def test_invalid_json_is_400(api):
    response = api.post("/api/v1/actions", data="{not json", headers={"Content-Type": "application/json"})
    assert_error(response, 400)


@pytest.mark.parametrize("body", [[], "x", 1, None])
def test_json_that_is_not_an_object_is_422(api, body):
    assert_error(api.post("/api/v1/actions", json=body), 422)


def test_validation_names_the_field(api, create_pack):
    create_pack("val")
    body = assert_error(api.post("/api/v1/actions", json={"pack": "val", "name": "ok", "runner_type": "warp-drive"}), 422)
    assert "runner_type" in body["errors"]


def test_nul_bytes_never_500(api, create_pack):
    create_pack("nul")
    response = api.post("/api/v1/actions", json={"pack": "nul", "name": "ok", "runner_type": "noop", "description": "a\x00b"})
    assert response.status_code == 422
    assert api.get("/api/v1/actions/nul.ok").status_code == 404


def test_unexpected_exception_is_500_without_traceback(db_session):
    from app import create_app

    other = create_app()

    @other.get("/__boom")
    def boom():
        raise RuntimeError("secret internals")

    response = other.test_client().get("/__boom")
    body = assert_error(response, 500)
    assert "secret internals" not in response.get_data(as_text=True)
    assert body["message"]


def test_error_body_has_standard_phrase():
    assert error_body(409, "dup") == {"code": 409, "status": "Conflict", "message": "dup", "errors": {}}


def test_redis_down_is_503_not_500(api, app):
    from app.devservices import free_port

    previous = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    try:
        response = api.get("/api/v1/actions")
    finally:
        app.config["REDIS_URL"] = previous
    body = assert_error(response, 503)
    assert "Redis" in body["message"]
    assert response.headers["Retry-After"] == "5"
