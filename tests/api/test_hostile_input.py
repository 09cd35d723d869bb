"""Every content endpoint, fed hostile paths, queries and bodies: a 4xx in the error shape,
never a 5xx, and no row written."""

from __future__ import annotations

import pytest

from app.models import Action, Pack, Rule, Sensor, Trigger
from tests.api.helpers import DEEP, send_raw

BLUEPRINTS = {"packs", "triggers", "sensors", "rules", "actions"}
PATH_VALUES = ["a%00b", "x" * 3000, "%F0%9F%92%A5.%E2%80%AE", "..%2F..%2Fetc", "a.b%0A", "%25_%25"]
QUERIES = ["page=0", "page=-1", "page=1e9", "page_size=0", "page_size=100000", "sort=-", "sort=%00",
           "q=%00", "q=" + "%25" * 300, "enabled=2", "pack=" + "p" * 500, "trigger=%00", "action=x%00"]
BODIES = ["[]", '"x"', "null", "{", DEEP[:20000] + DEEP[-20000:], b"\xff", '{"name": "\\u0000"}',
          '{"description": "\\ud800"}', '{"pack": {"nested": [1, 2]}, "name": []}']


def _routes(app):
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.split(".", 1)[0]
        if blueprint in BLUEPRINTS and "execute" not in rule.rule:
            yield rule.rule, sorted(rule.methods - {"HEAD", "OPTIONS"})


def _url(rule: str, value: str) -> str:
    return rule.replace("<ref>", value).replace("<name>", value)


@pytest.fixture
def counts(rows):
    return lambda: tuple(rows(model) for model in (Pack, Action, Trigger, Sensor, Rule))


def test_hostile_input_on_every_content_route(api, app, create_rule, create_sensor, counts):
    create_rule("acme.rule", trigger="acme.hook", action="acme.run")
    create_sensor("acme.watch")
    before = counts()
    checked = 0
    for rule, methods in _routes(app):
        for method in methods:
            urls = [_url(rule, value) for value in PATH_VALUES] if "<" in rule else [rule]
            if method == "GET":
                urls += [_url(rule, "acme.rule" if "<ref>" in rule else "acme") + "?" + q for q in QUERIES]
            elif method in ("POST", "PATCH"):
                urls.append(_url(rule, "acme.rule" if "<ref>" in rule else "acme"))
            for url in urls:
                if method in ("POST", "PATCH"):
                    responses = [send_raw(api, method, url, body) for body in BODIES]
                else:
                    responses = [api.request(method, url)]
                for response in responses:
                    checked += 1
                    assert response.status_code < 500, (method, url[:120], response.status_code)
                    body = response.get_json(silent=True)
                    assert body is not None or response.status_code in (200, 204), (method, url[:120], response.status_code, response.data[:200])
                    if response.status_code >= 400:
                        assert set(body) == {"code", "status", "message", "errors"}, (method, url[:120], body)
                    assert response.status_code >= 400 or method == "GET" or url.endswith("able"), (method, url[:120])
    assert checked > 300
    assert counts() == before
