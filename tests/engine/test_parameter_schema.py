"""Parameter schemas (actions, rules, pack configs): checking a schema and values against it."""

from __future__ import annotations

import http.server
import threading

import pytest

from app.engine.parameters import (
    MASK,
    instance_errors,
    is_json_schema,
    json_schema_errors,
    mask_secrets,
    schema_errors,
    secret_config_keys,
    value_errors,
    with_defaults,
)
from app.engine.runner_types import effective_parameters

PARAMETERS = {
    "host": {"type": "string", "required": True, "position": 0},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 22},
    "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
    "password": {"type": "string", "secret": True},
    "shell": {"type": "string", "default": "/bin/sh", "immutable": True},
    "tags": {"type": "array", "items": {"type": "string"}},
}


def test_a_good_schema_has_no_errors():
    assert schema_errors(PARAMETERS) == {}
    assert schema_errors({}) == {}
    assert schema_errors({"cmd": {"type": "string", "default": "echo {{ message }}"}}) == {}


@pytest.mark.parametrize("parameters, name, fragment", [
    ({"1st": {"type": "string"}}, "1st", "Parameter names"),
    ({"bad-name": {"type": "string"}}, "bad-name", "Parameter names"),
    ({"x": "string"}, "x", "must be an object"),
    ({"x": {"type": "str"}}, "x", "Unknown type 'str'"),
    ({"x": {"type": ["string", "float"]}}, "x", "Unknown type 'float'"),
    ({"x": {"type": "string", "required": "yes"}}, "x", "'required' must be true or false"),
    ({"x": {"type": "string", "secret": 1}}, "x", "'secret' must be true or false"),
    ({"x": {"position": -1}}, "x", "'position' must be a non-negative integer"),
    ({"x": {"position": True}}, "x", "'position' must be a non-negative integer"),
    ({"x": {"type": "integer", "default": "ten"}}, "x", "'default' does not match"),
    ({"x": {"type": "string", "enum": "abc"}}, "x", "Not a valid JSON Schema property"),
    ({"x": {"type": "string", "immutable": True}}, "x", "needs a 'default'"),
    ({"x": {"$ref": "http://127.0.0.1:9/s.json", "default": 1}}, "x", "unresolvable"),
])
def test_schema_problems_are_named_by_parameter(parameters, name, fragment):
    errors = schema_errors(parameters)
    assert list(errors) == [name]
    assert any(fragment in message for message in errors[name]), errors


def test_positions_must_be_unique():
    errors = schema_errors({"a": {"position": 0}, "b": {"position": 0}})
    assert "also used by 'a'" in errors["b"][0]


def test_schema_must_be_an_object():
    assert "_schema" in schema_errors(["host"])


def test_values_that_fit():
    assert value_errors(PARAMETERS, {"host": "db1"}) == {}
    assert value_errors(PARAMETERS, {"host": "db1", "port": 2222, "mode": "fast", "tags": ["a"],
                                     "shell": "/bin/sh", "password": None}) == {}


def test_value_problems_are_named_by_parameter():
    errors = value_errors(PARAMETERS, {"port": 0, "mode": "reckless", "shell": "/bin/bash", "tags": [1],
                                       "extra": True})
    assert errors["host"] == ["Missing required parameter."]
    assert errors["extra"] == ["Unknown parameter."]
    assert errors["shell"] == ["This parameter is immutable."]
    assert "minimum" in errors["port"][0]
    assert "reckless" in errors["mode"][0]
    assert errors["tags"][0].startswith("0: ")  # the path inside the value is named
    assert value_errors(PARAMETERS, "host=db1") == {"parameters": ["Must be an object."]}


def test_templates_are_accepted_where_allowed():
    values = {"host": "{{ trigger.host }}", "port": "{{ trigger.port }}", "mode": "{% if x %}fast{% endif %}"}
    assert value_errors(PARAMETERS, values, allow_templates=True) == {}
    assert set(value_errors(PARAMETERS, values)) == {"port", "mode"}
    # An immutable parameter cannot be templated either.
    assert "shell" in value_errors(PARAMETERS, {"host": "a", "shell": "{{ x }}"}, allow_templates=True)


def test_with_defaults_and_masking():
    merged = with_defaults(PARAMETERS, {"host": "db1", "port": 2200, "shell": "/bin/zsh", "password": "pw"})
    assert merged == {"host": "db1", "port": 2200, "mode": "safe", "shell": "/bin/sh", "password": "pw"}
    assert mask_secrets(merged, PARAMETERS)["password"] == MASK
    assert mask_secrets({"password": None}, PARAMETERS) == {"password": None}


def test_runner_parameters_are_overlaid_by_the_action():
    merged = effective_parameters("local-shell-cmd", {"cmd": {"default": "uptime", "immutable": True},
                                                      "verbose": {"type": "boolean"}})
    assert merged["cmd"] == {"type": "string", "description": "command run by /bin/sh", "default": "uptime",
                             "immutable": True}
    assert {"cwd", "env", "timeout", "verbose"} <= set(merged)
    assert effective_parameters("noop", {}) == {}


def test_json_schema_documents():
    assert json_schema_errors({}) == []
    assert json_schema_errors({"type": "object", "properties": {"a": {"type": "string"}}}) == []
    assert json_schema_errors([]) == ["Must be a JSON Schema object."]
    assert "Not a valid JSON Schema" in json_schema_errors({"type": "thing"})[0]
    assert "'properties/a/minimum'" in json_schema_errors({"properties": {"a": {"minimum": "x"}}})[0]


def test_instance_errors_name_paths_and_accept_templates():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "array",
              "items": {"type": "string"}}}, "required": ["a"]}
    assert instance_errors(schema, {"a": 1, "b": ["x"]}) == []
    assert instance_errors(schema, {"b": ["x", 2]}) == ["'a' is a required property", "b.1: 2 is not of type 'string'"]
    assert instance_errors(schema, {"a": "{{ kv.system.a }}"}, allow_templates=True) == []
    assert instance_errors(schema, {"a": "{{ kv.system.a }}"}) != []
    many = {"type": "array", "items": {"type": "string"}}
    assert len(instance_errors(many, list(range(100)))) == 20


def test_remote_refs_are_never_fetched():
    """A "$ref" to a URL is unresolvable: the server never makes the request a user asked for."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"type": "string"}')

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/schema.json"
        problems = instance_errors({"$ref": url}, 5)
        assert problems and "unresolvable" in problems[0]
        assert "x" in value_errors({"x": {"$ref": url}}, {"x": 5})
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []


def test_local_refs_still_work():
    schema = {"definitions": {"port": {"type": "integer"}}, "type": "object",
              "properties": {"p": {"$ref": "#/definitions/port"}}}
    assert instance_errors(schema, {"p": 1}) == []
    assert instance_errors(schema, {"p": "x"}) == ["p: 'x' is not of type 'integer'"]


def test_schemas_too_deep_for_the_validator_are_errors_not_crashes():
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["items"] = {}
        node = node["items"]
    assert json_schema_errors(deep) == ["The schema is nested too deeply or has unresolvable references."]
    instance: list = []
    inner = instance
    for _ in range(5000):
        inner.append([])
        inner = inner[0]
    assert "nested too deeply" in instance_errors({"$ref": "#/definitions/l", "definitions": {
        "l": {"type": "array", "items": {"$ref": "#/definitions/l"}}}}, instance)[0]


def test_config_schema_forms_and_their_secrets():
    flat = {"token": {"type": "string", "secret": True}, "region": {"type": "string"}}
    full = {"type": "object", "properties": flat}
    assert is_json_schema(full) and not is_json_schema(flat) and not is_json_schema({})
    assert secret_config_keys(flat) == {"token"} == secret_config_keys(full)
    assert secret_config_keys({"type": "object"}) == set()
    assert secret_config_keys(None) == set()


# Backtracks exponentially in Python's re and in regex alike (unlike "^(a+)+$", which regex
# answers at once); either must answer within the budget.
CATASTROPHIC = ["^(a|a)*$", "^(a+)+$", "^(a|aa)+$"]
HOSTILE_VALUE = "a" * 40 + "!"


def timed(call):
    import time

    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_catastrophic_pattern_against_a_value_answers_quickly(pattern):
    parameters = {"name": {"type": "string", "pattern": pattern}}
    errors, took = timed(lambda: value_errors(parameters, {"name": HOSTILE_VALUE}))
    assert took < 1.5
    (message,) = errors["name"]
    assert "in time" in message or "does not match" in message
    assert value_errors(parameters, {"name": "aaaa"}) == {}


def test_running_out_of_time_is_a_validation_error_naming_the_pattern():
    errors = value_errors({"name": {"type": "string", "pattern": "^(a|a)*$"}}, {"name": HOSTILE_VALUE})
    assert errors == {"name": ["Could not be checked against the pattern '^(a|a)*$' in time (0.25 s): "
                               "the pattern backtracks too much; simplify it."]}


def test_a_catastrophic_default_is_refused_when_the_schema_is_checked():
    errors, took = timed(lambda: schema_errors({
        "name": {"type": "string", "pattern": "^(a|a)*$", "default": HOSTILE_VALUE}}))
    assert took < 1.5
    assert "'default' does not match the definition" in errors["name"][0] and "in time" in errors["name"][0]


def test_every_pattern_of_one_value_shares_one_budget():
    # A thousand items each just under a per-match limit would hold the request for minutes.
    parameters = {"names": {"type": "array", "items": {"type": "string", "pattern": "^(a|a)*$"}}}
    errors, took = timed(lambda: value_errors(parameters, {"names": [HOSTILE_VALUE] * 200}))
    assert took < 1.5
    assert "in time" in errors["names"][0]


@pytest.mark.parametrize("schema", [
    {"type": "object", "patternProperties": {"^(a|a)*$": {"type": "string"}}},
    {"type": "object", "patternProperties": {"^(a|a)*$": {"type": "string"}}, "additionalProperties": False},
    {"type": "object", "properties": {"inner": {"type": "string", "pattern": "^(a|a)*$"}}},
])
def test_patterns_on_keys_and_nested_values_are_bounded_too(schema):
    instance = {HOSTILE_VALUE: "x"} if "patternProperties" in schema else {"inner": HOSTILE_VALUE}
    errors, took = timed(lambda: instance_errors(schema, instance))
    assert took < 1.5
    assert any("in time" in message for message in errors), errors


def test_pattern_properties_and_additional_properties_still_validate():
    schema = {"type": "object", "patternProperties": {"^x_": {"type": "integer"}}, "additionalProperties": False}
    assert instance_errors(schema, {"x_a": 1}) == []
    assert instance_errors(schema, {"x_a": "no"}) == ["x_a: 'no' is not of type 'integer'"]
    assert instance_errors(schema, {"y": 1}) == ["'y' does not match any of the regexes: '^x_'"]
    closed = {"type": "object", "properties": {"a": {}}, "additionalProperties": False}
    assert instance_errors(closed, {"a": 1, "b": 2}) == ["Additional properties are not allowed ('b' was unexpected)"]
    assert instance_errors({"type": "object", "additionalProperties": {"type": "integer"}}, {"n": "x"}) == [
        "n: 'x' is not of type 'integer'"]


@pytest.mark.parametrize("pattern", ["(?:a{65535}){65535}", "((a{1000}){1000}){1000}", "x{4294967294}"])
def test_a_pattern_too_large_to_compile_is_refused_not_built(pattern):
    # The regex module writes fixed repetitions out when it compiles: these would take gigabytes.
    errors, took = timed(lambda: schema_errors({"name": {"type": "string", "pattern": pattern}}))
    assert took < 1.5
    assert "Not a valid JSON Schema property" in errors["name"][0] and "repeats too much" in errors["name"][0]
    assert json_schema_errors({"type": "object", "properties": {"name": {"pattern": pattern}}})
    # A schema stored before the check (never validated) fails the value, not the process.
    (message,) = value_errors({"name": {"type": "string", "pattern": pattern}}, {"name": "a"})["name"]
    assert "cannot be used" in message and "repeats too much" in message


def test_ordinary_patterns_keep_working():
    parameters = {"sha": {"type": "string", "pattern": "^[0-9a-f]{40}$"},
                  "host": {"type": "string", "pattern": r"^[a-z0-9.-]+\Z"}}
    assert schema_errors(parameters) == {}
    assert value_errors(parameters, {"sha": "0" * 40, "host": "example.org"}) == {}
    errors = value_errors(parameters, {"sha": "xyz", "host": "a b"})
    assert errors == {"sha": ["'xyz' does not match '^[0-9a-f]{40}$'"],
                      "host": ["'a b' does not match '^[a-z0-9.-]+\\\\Z'"]}
    (unclosed,) = schema_errors({"p": {"type": "string", "pattern": "(unclosed"}})["p"]
    assert "Not a valid JSON Schema property" in unclosed and "missing )" in unclosed
