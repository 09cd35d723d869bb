"""Properties every route must have, checked over the app's URL map and its OpenAPI document
rather than route by route, so a route added later is covered without a new test."""

from __future__ import annotations

import json
import re

import pytest

from tests.api.helpers import assert_error
from tests.factories import pagination

# Routes outside the API: the Swagger UI page, its assets, the document itself.
NOT_IN_THE_DOCUMENT = {"/docs", "/docs/assets/<path:filename>", "/api/v1/openapi.json"}


@pytest.fixture
def spec(anonymous):
    return anonymous.get("/api/v1/openapi.json").get_json()


@pytest.fixture
def content(create_action, create_trigger, create_rule, api):
    create_action("acme.run")
    create_trigger("acme.page")
    create_rule("acme.on_page", trigger="acme.page", action="acme.run")
    sensor = api.post("/api/v1/sensors", json={"pack": "acme", "name": "watch", "class_name": "Watch",
                                               "entry_point": "watch.py", "trigger_types": ["acme.page"]})
    assert sensor.status_code == 201, sensor.json


REFS = {"actions": "acme.run", "triggers": "acme.page", "rules": "acme.on_page", "sensors": "acme.watch"}


def concrete(path: str) -> str:
    """``path`` (Flask ``<x>`` or OpenAPI ``{x}`` parameters) with existing objects filled in."""
    kind = path.split("/")[3] if path.startswith("/api/v1/") else ""
    path = re.sub(r"[<{](?:int:)?(ref)[>}]", REFS.get(kind, "acme.x"), path)
    path = re.sub(r"[<{](?:int:)?(name)[>}]", "acme" if kind == "packs" else "viewer", path)
    return re.sub(r"[<{](?:int:)?\w+[>}]", "1", path)


def test_every_route_that_takes_a_body_refuses_one_over_the_limit(app, api, content):
    limit = app.config["MAX_BODY_BYTES"]
    body = json.dumps({"description": "x" * limit})
    checked = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
            response = api.request(method, concrete(rule.rule), data=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 413, (method, rule.rule, response.status_code)
            assert str(limit) in assert_error(response, 413)["message"]
            checked.append(f"{method} {rule.rule}")
    assert "POST /api/v1/rules/<ref>/enable" in checked and "POST /api/v1/packs/register" in checked
    # Nothing was changed by the refused requests.
    assert api.get("/api/v1/rules/acme.on_page").json["enabled"] is True
    assert api.get("/api/v1/actions/acme.run").status_code == 200


def list_operations(spec) -> list[tuple[str, dict]]:
    found = []
    for path, operations in spec["paths"].items():
        get = operations.get("get")
        schema = (get or {}).get("responses", {}).get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if schema.get("type") == "array":
            found.append((path, get))
    return found


def test_every_paginated_list_sends_x_pagination_and_checks_its_bounds(api, spec, content):
    lists = list_operations(spec)
    assert len(lists) >= 10
    for path, operation in lists:
        parameters = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if "page_size" not in parameters:
            continue  # a fixed catalogue (the permission names), documented without pagination
        url = concrete(path)
        response = api.get(f"{url}?page=1&page_size=1")
        assert response.status_code == 200, (path, response.json)
        meta = pagination(response)
        assert meta["total"] >= len(response.json) and meta.get("page", 1) == 1, path
        assert "X-Pagination" in operation["responses"]["200"]["headers"], path
        for bad in ("page=0", "page_size=0", "page_size=101", "page=x"):
            assert_error(api.get(f"{url}?{bad}"), 422)
        if "sort" in parameters:
            assert_error(api.get(f"{url}?sort=no_such_column"), 422, "sort")
        if "enabled" in parameters:
            assert_error(api.get(f"{url}?enabled=perhaps"), 422, "enabled")


def test_the_content_relationship_lists(api, content, create_rule):
    create_rule("other.also_runs", trigger="acme.page", action="acme.run")
    for url, expected in (
        ("/api/v1/packs/acme/actions", ["acme.run"]),
        ("/api/v1/packs/acme/triggers", ["acme.page"]),
        ("/api/v1/packs/acme/rules", ["acme.on_page"]),
        ("/api/v1/packs/acme/sensors", ["acme.watch"]),
        ("/api/v1/actions/acme.run/rules", ["acme.on_page", "other.also_runs"]),
        ("/api/v1/triggers/acme.page/rules", ["acme.on_page", "other.also_runs"]),
    ):
        response = api.get(url)
        assert response.status_code == 200, (url, response.json)
        assert sorted(item["ref"] for item in response.json) == expected, url
    for url in ("/api/v1/packs/nope/actions", "/api/v1/actions/acme.nope/rules", "/api/v1/triggers/acme.nope/rules"):
        assert_error(api.get(url), 404)


@pytest.mark.parametrize("url", ["/api/v1/actions/acme.run/rules", "/api/v1/triggers/acme.page/rules"])
def test_the_rules_of_a_trigger_or_action_filter_and_sort_like_the_rules_list(api, content, create_rule, url):
    create_rule("other.also_runs", trigger="acme.page", action="acme.run", enabled=False)
    create_rule("other.unrelated")

    def refs(query: str) -> list[str]:
        response = api.get(f"{url}?{query}")
        assert response.status_code == 200, (query, response.json)
        return [item["ref"] for item in response.json]

    assert refs("sort=-ref") == ["other.also_runs", "acme.on_page"]
    assert refs("sort=ref") == ["acme.on_page", "other.also_runs"]
    assert refs("pack=other") == ["other.also_runs"]
    assert refs("enabled=true") == ["acme.on_page"]
    assert refs("q=also") == ["other.also_runs"]
    assert_error(api.get(f"{url}?sort=trigger"), 422, "sort")


def test_the_document_describes_every_route(app, spec):
    for rule in app.url_map.iter_rules():
        if rule.rule in NOT_IN_THE_DOCUMENT:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in spec["paths"], f"{rule.rule} is not in the OpenAPI document"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = spec["paths"][path].get(method.lower())
            assert operation, f"{method} {path} is not in the OpenAPI document"
            assert operation.get("summary") and operation.get("responses"), f"{method} {path}"


def test_every_schema_the_document_refers_to_is_in_it(spec):
    text = json.dumps(spec)
    referred = set(re.findall(r'"#/components/(\w+)/([^"]+)"', text))
    assert referred
    for section, name in referred:
        assert name in spec["components"].get(section, {}), f"#/components/{section}/{name} is missing"
    for name in ("Pack", "Action", "Trigger", "Sensor", "Rule", "Error", "PackRegister", "PackRegisterResult",
                 "Inquiry", "InquiryResponse"):
        assert name in spec["components"]["schemas"], name


def test_every_route_answers_a_wrong_method_with_405_and_allow(app, api, content):
    for rule in app.url_map.iter_rules():
        allowed = rule.methods - {"HEAD", "OPTIONS"}
        wrong = next(m for m in ("PUT", "PATCH", "DELETE", "POST", "GET") if m not in allowed)
        response = api.request(wrong, concrete(rule.rule))
        assert response.status_code == 405, (wrong, rule.rule, response.status_code)
        assert_error(response, 405)
        assert allowed <= set(response.headers["Allow"].split(", ")), rule.rule
