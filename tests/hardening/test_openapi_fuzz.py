"""Schemathesis over every operation of the OpenAPI document, as an admin: no input it
generates (valid or not) gets a 5xx, and every answer matches the documented status codes
and response schemas. Bounded and derandomized, so CI runs the same cases every time."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

EXAMPLES_PER_OPERATION = 5
# These end the admin's own session; run last so the others still authenticate.
SESSION_ENDING = ("/api/v1/auth/logout", "/api/v1/auth/password")
# follow=true answers a never-ending event stream while the execution runs: not for a fuzzer.
FIXED_QUERY = {"/api/v1/executions/{execution_id}/logs": {"follow": "false"}}
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Generated credentials would replace the admin's (an X-API-Key is tried before a bearer).
CREDENTIAL_HEADERS = {"authorization", "x-api-key"}


@pytest.fixture
def schema(app, api):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.fixture
def existing(api, create_rule, create_identity, db_session):
    """Path parameters naming rows that exist, so valid cases reach past the 404."""
    from app.models import Sensor

    rule = create_rule("acme.rule", trigger="acme.hook", action="acme.run")
    db_session.add(Sensor(pack_id=rule.pack_id, pack_name="acme", name="watch", ref="acme.watch",
                          class_name="Poller", entry_point="sensors/watch.py"))
    db_session.commit()
    bob = create_identity("bob", roles=["viewer"]).id
    assert api.post("/api/v1/roles", json={"name": "ops"}).status_code == 201
    key = api.post("/api/v1/apikeys", json={"name": "ci"}).get_json()["id"]
    execution = api.post("/api/v1/actions/acme.run/execute", json={"parameters": {}}).get_json()["id"]
    by_prefix = {"/api/v1/actions/": {"ref": "acme.run"}, "/api/v1/rules/": {"ref": "acme.rule"},
                 "/api/v1/triggers/": {"ref": "acme.hook"}, "/api/v1/sensors/": {"ref": "acme.watch"},
                 "/api/v1/packs/": {"name": "acme"}, "/api/v1/roles/": {"name": "ops"},
                 "/api/v1/identities/": {"identity_id": bob, "role": "viewer"},
                 "/api/v1/apikeys/": {"key_id": key}, "/api/v1/executions/": {"execution_id": execution}}

    def for_path(path: str) -> dict | None:
        return next((values for prefix, values in by_prefix.items() if path.startswith(prefix)), None)

    return for_path


def _operations(schema):
    operations = [result.ok() for result in schema.get_all_operations()]
    # Deletions last (they remove the rows the others use; the pack, with all of it, last of
    # them), session-ending calls after those.
    return sorted(operations, key=lambda op: (op.path in SESSION_ENDING, op.method == "delete",
                                              op.path == "/api/v1/packs/{name}", op.path, op.method))


@pytest.mark.timeout(300)
def test_no_generated_input_gets_a_5xx_or_breaks_the_contract(schema, api, existing):
    operations = _operations(schema)
    assert len(operations) > 50
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            known = existing(operation.path) if mode is GenerationMode.POSITIVE else None
            path_parameters = {name: value for name, value in (known or {}).items()
                               if "{" + name + "}" in operation.path} or None
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters,
                                             query=FIXED_QUERY.get(operation.path))

            @given(case=strategy)
            @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case):
                case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in CREDENTIAL_HEADERS}
                response = case.call(headers=api.headers)
                case.validate_response(response, checks=CHECKS, headers=api.headers)

            try:
                run()
            except Unsatisfiable:
                continue  # no parameters and no body: nothing negative to send (GET /health)
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then fail once
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
