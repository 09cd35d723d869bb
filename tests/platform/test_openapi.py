"""The OpenAPI document and Swagger UI, served without internet access."""

from __future__ import annotations

import re


def test_openapi_document_describes_the_api(anonymous):
    response = anonymous.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["info"]["title"] == "Patchbay"
    assert "/api/v1/actions" in spec["paths"]
    assert "/api/v1/actions/{ref}" in spec["paths"]
    assert {"bearerAuth", "apiKeyAuth"} <= set(spec["components"]["securitySchemes"])
    list_actions = spec["paths"]["/api/v1/actions"]["get"]
    assert list_actions["x-permission"] == "actions:view"
    assert any(p["name"] == "page_size" for p in list_actions["parameters"])
    assert "Action" in spec["components"]["schemas"]


def test_every_operation_declares_its_security(anonymous):
    spec = anonymous.get("/api/v1/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert "security" in operation, f"{method.upper()} {path} has no security declaration"


def test_swagger_ui_is_served_with_local_assets(anonymous):
    page = anonymous.get("/docs")
    if page.status_code in (301, 302, 308):
        page = anonymous.get(page.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/v1/openapi.json" in html
    asset_urls = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert asset_urls, html
    for url in asset_urls:
        assert url.startswith("/"), f"{url} is not served by Patchbay itself"
        asset = anonymous.get(url)
        assert asset.status_code == 200, url
        assert len(asset.data) > 1000


def test_the_keys_endpoints_document_the_run_token(anonymous):
    spec = anonymous.get("/api/v1/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["runTokenAuth"] == {
        "type": "apiKey", "in": "header", "name": "X-Auth-Token"}
    keys = spec["paths"]["/api/v1/keys"]
    assert {"runTokenAuth": []} in keys["get"]["security"] and {"runTokenAuth": []} in keys["post"]["security"]
    # Nowhere else.
    others = [path for path, item in spec["paths"].items() if not path.startswith("/api/v1/keys")
              for operation in item.values() if isinstance(operation, dict)
              and {"runTokenAuth": []} in operation.get("security", [])]
    assert others == []
