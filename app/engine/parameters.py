"""Action parameter schemas: checking a schema, and checking values against it.

A parameter schema is a dict ``{name: definition}`` where a definition is a JSON Schema
property (``type``, ``enum``, ``minimum``, ``items``, ...) plus Patchbay/StackStorm keys:
``required``, ``default``, ``secret``, ``immutable``, ``position``, ``allow_options`` and
``description``.
"""

from __future__ import annotations

import re
from typing import Any

import referencing
import referencing.exceptions
from jsonschema import Draft7Validator, validators
from jsonschema.exceptions import SchemaError, UnknownType

from app.engine.schema_patterns import SCHEMA_FORMATS, TIMED_KEYWORDS, pattern_budget
from app.engine.template_syntax import is_template

EXTRA_KEYS = {"required", "default", "secret", "immutable", "position", "description", "title", "allow_options"}
JSON_TYPES = {"string", "integer", "number", "boolean", "object", "array", "null"}
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")  # \Z: "$" lets a trailing newline in
MASK = "********"
# Request headers whose values are credentials: the ``headers`` parameter keeps them in Vault
# (under SECRET_HEADERS, which no parameter can be named) and shows them masked.
HEADERS = "headers"
SECRET_HEADERS = "headers:credentials"
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
                                "api-key", "apikey", "x-auth-token", "x-access-token", "private-token",
                                "x-vault-token", "x-amz-security-token", "x-csrf-token", "x-xsrf-token"})
CREDENTIAL_WORDS = ("auth", "token", "secret", "password", "passwd", "api-key", "api_key", "apikey", "cookie",
                    "session", "credential", "signature")
# The http-request runner's allow-list of internal destinations (tasks/runners/http_request.py).
ALLOWED_NETWORKS = "allowed_networks"


# An empty registry: a "$ref" may point inside its own schema, never at a URL. jsonschema's
# default registry fetches remote refs, which would let a user make the server send requests.
_NO_REMOTE_REFS = referencing.Registry()
# Schemas nested deeper than Python's stack can follow, or refs that cannot be resolved, are
# the user's mistake (422), not a crash.
_UNUSABLE = (RecursionError, referencing.exceptions.Unresolvable)
# A stored schema that was never checked (unknown type name, broken regex) fails mid-validation.
_BROKEN_SCHEMA = (*_UNUSABLE, SchemaError, UnknownType, re.error)


# Draft 7 with its regular expressions on a time budget (app.engine.schema_patterns).
_TimedDraft7Validator = validators.extend(Draft7Validator, TIMED_KEYWORDS)


def validator(schema: Any) -> Draft7Validator:
    """A Draft 7 validator for ``schema`` that never fetches remote references."""
    return _TimedDraft7Validator(schema, registry=_NO_REMOTE_REFS)


def json_schema_errors(schema: Any) -> list[str]:
    """Problems with a whole JSON Schema document (empty when valid)."""
    if not isinstance(schema, dict):
        return ["Must be a JSON Schema object."]
    try:
        Draft7Validator.check_schema(schema, format_checker=SCHEMA_FORMATS)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        # A format failure (a pattern that cannot compile) carries its reason as the cause.
        return [f"Not a valid JSON Schema{f' at {where!r}' if where else ''}: {exc.message}"
                + (f" ({exc.cause})" if exc.cause else "")]
    except _UNUSABLE:
        return ["The schema is nested too deeply or has unresolvable references."]
    return []


def instance_errors(schema: dict[str, Any], instance: Any, *, allow_templates: bool = False) -> list[str]:
    """Why ``instance`` does not match ``schema`` (at most 20 messages, empty when valid).

    With ``allow_templates`` a Jinja template string is accepted wherever a value is expected:
    its type is only known once rendered.
    """
    try:
        with pattern_budget():
            found = sorted(validator(schema).iter_errors(instance), key=lambda e: (list(e.absolute_path), e.message))
    except _BROKEN_SCHEMA:
        return ["The schema cannot be used: it is invalid, nested too deeply or has unresolvable references."]
    messages = []
    for error in found:
        if allow_templates and is_template(error.instance):
            continue
        where = ".".join(str(p) for p in error.absolute_path)
        messages.append(f"{where}: {error.message}" if where else error.message)
    return messages[:20]


def _property_schema(definition: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in definition.items() if k not in EXTRA_KEYS - {"description", "title"}}


def schema_errors(parameters: Any) -> dict[str, list[str]]:
    """Problems with a parameter schema, keyed by parameter name (empty when valid)."""
    if not isinstance(parameters, dict):
        return {"_schema": ["Must be an object mapping parameter names to definitions."]}
    errors: dict[str, list[str]] = {}
    positions: dict[int, str] = {}
    for name, definition in parameters.items():
        problems: list[str] = []
        if not isinstance(name, str) or not PARAM_NAME.match(name):
            problems.append("Parameter names are letters, digits and '_' and start with a letter or '_'.")
        if not isinstance(definition, dict):
            errors[str(name)] = problems + ["The definition must be an object."]
            continue
        kind = definition.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
        unknown_types = [k for k in kinds if k not in JSON_TYPES]
        if unknown_types:
            problems.append(f"Unknown type {unknown_types[0]!r}; use one of {', '.join(sorted(JSON_TYPES))}.")
        for flag in ("required", "secret", "immutable", "allow_options"):
            if flag in definition and not isinstance(definition[flag], bool):
                problems.append(f"'{flag}' must be true or false.")
        if "position" in definition:
            position = definition["position"]
            if isinstance(position, bool) or not isinstance(position, int) or position < 0:
                problems.append("'position' must be a non-negative integer.")
            elif position in positions:
                problems.append(f"'position' {position} is also used by {positions[position]!r}.")
            else:
                positions[position] = name
        prop = _property_schema(definition)
        if not unknown_types:
            try:
                Draft7Validator.check_schema(prop, format_checker=SCHEMA_FORMATS)
            except SchemaError as exc:
                problems.append(f"Not a valid JSON Schema property: {exc.message}"
                                + (f" ({exc.cause})" if exc.cause else ""))
            except _UNUSABLE:
                problems.append("The definition is nested too deeply.")
            else:
                if "default" in definition and not is_template(definition["default"]):
                    default_errors = instance_errors(prop, definition["default"])
                    if default_errors:
                        problems.append(f"'default' does not match the definition: {default_errors[0]}")
        if definition.get("immutable") and "default" not in definition:
            problems.append("An immutable parameter needs a 'default'.")
        if name == ALLOWED_NETWORKS and definition.get("immutable") is not True:
            # It widens where http-request may connect: no caller or rule may choose it.
            problems.append(f"'{ALLOWED_NETWORKS}' must be declared 'immutable: true' with a 'default'.")
        if problems:
            errors[str(name)] = problems
    return errors


def secret_names(parameters: dict[str, Any]) -> set[str]:
    return {name for name, d in (parameters or {}).items() if isinstance(d, dict) and d.get("secret")}


def mask_secrets(values: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """``values`` with secret parameters and credential headers shown as ``********``."""
    secrets = secret_names(parameters)
    masked = {k: (MASK if k in secrets and v is not None else v) for k, v in (values or {}).items()}
    credentials = credential_headers(values, parameters)
    if credentials:
        masked[HEADERS] = {k: (MASK if k in credentials else v) for k, v in values[HEADERS].items()}
    return masked


def credential_header(name: Any) -> bool:
    lowered = str(name).lower()
    return lowered in CREDENTIAL_HEADERS or any(word in lowered for word in CREDENTIAL_WORDS)


def credential_headers(values: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The credential entries of the ``headers`` parameter (unless it is a secret as a whole)."""
    headers = (values or {}).get(HEADERS)
    if not isinstance(headers, dict) or HEADERS in secret_names(parameters):
        return {}
    return {k: v for k, v in headers.items() if credential_header(k) and v is not None and v != MASK}


def vault_secrets(values: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """What Vault keeps for an execution: secret parameters, and credential headers apart."""
    found = {name: values[name] for name in secret_names(parameters) if values.get(name) is not None}
    credentials = credential_headers(values, parameters)
    return {**found, SECRET_HEADERS: credentials} if credentials else found


def restore_secrets(values: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """The row's masked ``values`` with what Vault kept (``vault_secrets``) put back."""
    restored = {**values, **{k: v for k, v in stored.items() if k != SECRET_HEADERS}}
    headers, credentials = restored.get(HEADERS), stored.get(SECRET_HEADERS)
    if isinstance(headers, dict) and isinstance(credentials, dict):
        restored[HEADERS] = {k: credentials.get(k, v) if v == MASK else v for k, v in headers.items()}
    return restored


def value_errors(parameters: dict[str, Any], values: Any, *, allow_templates: bool = False) -> dict[str, list[str]]:
    """Problems with ``values`` given the schema (unknown, missing, immutable, wrong type/enum)."""
    if not isinstance(values, dict):
        return {"parameters": ["Must be an object."]}
    errors: dict[str, list[str]] = {}
    for name in values:
        if name not in parameters:
            errors[name] = ["Unknown parameter."]
    for name, definition in parameters.items():
        if name not in values:
            if definition.get("required") and "default" not in definition:
                errors[name] = ["Missing required parameter."]
            continue
        value = values[name]
        if definition.get("immutable"):
            if value != definition.get("default"):
                errors[name] = ["This parameter is immutable."]
            continue
        if allow_templates and is_template(value):
            continue
        if value is None and not definition.get("required"):
            continue
        found = instance_errors(_property_schema(definition), value)
        if found:
            errors[name] = [found[0]]
    return errors


def with_defaults(parameters: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` plus the defaults of parameters not given (immutable ones always default)."""
    merged = dict(values)
    for name, definition in parameters.items():
        if "default" in definition and (name not in merged or definition.get("immutable")):
            merged[name] = definition["default"]
    return merged


def is_json_schema(config_schema: Any) -> bool:
    """A whole JSON Schema ({"type": "object", "properties": ...}) rather than StackStorm's
    flat ``config.schema.yaml`` form ({key: {type, secret, required, ...}}), whose values are
    all objects, so a string ``type`` tells them apart."""
    return isinstance(config_schema, dict) and isinstance(config_schema.get("type"), str)


def secret_config_keys(config_schema: Any) -> set[str]:
    """Top-level config keys declared ``secret: true``, in either form of config schema."""
    if not isinstance(config_schema, dict):
        return set()
    properties = config_schema.get("properties") if is_json_schema(config_schema) else config_schema
    if not isinstance(properties, dict):
        return set()
    return {name for name, prop in properties.items() if isinstance(prop, dict) and prop.get("secret") is True}


def mask_secret_properties(schema: Any, value: Any) -> Any:
    """``value`` with every property its JSON schema marks ``secret: true`` (nested objects
    too) shown as ********."""
    if not isinstance(schema, dict) or not isinstance(value, dict):
        return value
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return value
    masked = dict(value)
    for name, definition in properties.items():
        if name not in masked or not isinstance(definition, dict):
            continue
        masked[name] = MASK if definition.get("secret") else mask_secret_properties(definition, masked[name])
    return masked
