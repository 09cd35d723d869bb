"""Parsing and checking the files of a pack (StackStorm layout), without touching disk or database.

The loader reads the files and hands their text here; this module turns each into a plain
dict of model fields, collecting every problem as ``errors[<file>][<field>] = [messages]``
so one answer can name all of them. References to other content (a rule's action, a
sensor's named trigger types) and entry-point files are checked by the loader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from app.engine.criteria_checks import criteria_errors
from app.engine.parameters import json_schema_errors, schema_errors
from app.engine.runner_types import NEEDS_ENTRY_POINT, RUNNER_TYPES
from app.engine.trigger_aliases import canonical_trigger_ref

# Same rules as the API's name validators (app/schemas/common.py); kept here so the engine
# does not import the API layer.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
PACK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}\Z")
REF_PATTERN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+\Z")
CLASS_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}\Z")

# A YAML document may not expand into more nodes than this (anchors/aliases can make a
# small file huge), nor nest deeper.
MAX_NODES = 20_000
MAX_DEPTH = 32
MAX_TIMEOUT = 7 * 24 * 3600

# StackStorm keys that existing packs carry and Patchbay does not use; accepted and ignored.
IGNORED_KEYS = {
    "pack.yaml": {"stackstorm_version", "python_versions", "dependencies", "system", "contributors",
                  "website", "attribution", "uid", "id", "path", "repo_url"},
    "actions": {"pack", "ref", "uid", "id", "notify", "metadata_file"},
    "triggers": {"pack", "ref", "uid", "id", "metadata_file"},
    "sensors": {"pack", "ref", "uid", "id", "metadata_file", "artifact_uri"},
    "rules": {"pack", "ref", "uid", "id", "type", "context", "metadata_file"},
}


class PackErrors:
    """Problems found in a pack, by file (relative to the pack) and field."""

    def __init__(self) -> None:
        self.by_file: dict[str, dict[str, list[str]]] = {}

    def add(self, file: str, field_name: str, message: str) -> None:
        self.by_file.setdefault(file, {}).setdefault(field_name, []).append(message)

    def merge(self, file: str, prefix: str, problems: dict[str, list[str]]) -> None:
        for key, messages in problems.items():
            name = prefix if key == "_schema" else f"{prefix}.{key}"
            for message in messages:
                self.add(file, name, message)

    def __bool__(self) -> bool:
        return bool(self.by_file)

    def count(self) -> int:
        return sum(len(m) for fields in self.by_file.values() for m in fields.values())


@dataclass
class Item:
    """One action, trigger type, sensor or rule read from ``source_file``."""

    name: str
    source_file: str
    fields: dict[str, Any]
    # For rules: the refs to resolve; for sensors: trigger types named by string.
    refs: dict[str, Any] = field(default_factory=dict)


@dataclass
class PackDefinition:
    name: str
    meta: dict[str, Any]
    config_schema: dict[str, Any] = field(default_factory=dict)
    triggers: list[Item] = field(default_factory=list)
    actions: list[Item] = field(default_factory=list)
    sensors: list[Item] = field(default_factory=list)
    rules: list[Item] = field(default_factory=list)


def load_yaml(file: str, text: str, errors: PackErrors) -> Any:
    """The document in ``text`` (safe_load only), or None with the problem recorded."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        errors.add(file, "_file", f"Not valid YAML{where}: {problem}.")
        return None
    problem = json_problem(document)
    if problem:
        errors.add(file, "_file", problem)
        return None
    if not isinstance(document, dict):
        errors.add(file, "_file", "Must be a YAML mapping (key: value pairs).")
        return None
    return document


def json_problem(document: Any) -> str | None:
    """Why ``document`` cannot be stored as JSON (dates, binary, non-string keys, size), if so."""
    budget = [MAX_NODES]

    def walk(value: Any, path: str, depth: int) -> str | None:
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DEPTH:
            return f"The document is too large or too deeply nested (limits: {MAX_NODES} values, depth {MAX_DEPTH})."
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, bool):
                    # YAML 1.1 reads on/off/yes/no as booleans, also as keys (retry's "on").
                    return f"Key {key!r} at {path or 'the top'} must be a string; quote it (\"on\": ...)."
                if not isinstance(key, str):
                    return f"Key {key!r} at {path or 'the top'} must be a string; quote it."
                found = walk(item, f"{path}.{key}" if path else key, depth + 1)
                if found:
                    return found
            return None
        if isinstance(value, list):
            for index, item in enumerate(value):
                found = walk(item, f"{path}[{index}]", depth + 1)
                if found:
                    return found
            return None
        if isinstance(value, str):
            if "\x00" in value:
                return f"The value at {path or 'the top'} contains a NUL character."
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f"The value at {path or 'the top'} is not valid Unicode."
            return None
        if value is None or isinstance(value, (bool, int, float)):
            return None
        return f"The value at {path or 'the top'} is a {type(value).__name__}; quote it to make it a string."

    return walk(document, "", 0)


class _Reader:
    """Takes typed fields out of one document, recording problems against its file."""

    def __init__(self, file: str, document: dict[str, Any], errors: PackErrors, kind: str) -> None:
        self.file, self.doc, self.errors = file, document, errors
        self.known: set[str] = set(IGNORED_KEYS.get(kind, ()))

    def take(self, name: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        self.known.add(name)
        value = self.doc.get(name)
        if value is None:
            if required:
                self.error(name, "Missing required field.")
            return default
        if isinstance(value, bool) and kind in (int, (int, float)) or not isinstance(value, kind):
            self.error(name, f"Must be {_type_name(kind)}.")
            return default
        return value

    def error(self, name: str, message: str) -> None:
        self.errors.add(self.file, name, message)

    def reject_unknown(self) -> None:
        for key in sorted(set(self.doc) - self.known):
            self.error(key, "Unknown field.")


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", bool: "true or false", int: "an integer", float: "a number",
             dict: "a mapping", list: "a list"}
    if isinstance(kind, tuple):
        return " or ".join(names[k] for k in kind)
    return names[kind]


def _name(reader: _Reader, key: str = "name", pattern: re.Pattern[str] = NAME_PATTERN) -> str | None:
    value = reader.take(key, str, required=True)
    if value is not None and not pattern.match(value):
        reader.error(key, "Use letters, digits, '_', '-' and '.' (max 128), starting with a letter, digit or '_'.")
        return None
    return value


def _tags(reader: _Reader) -> list[str]:
    """Tags as strings; StackStorm's ``{name, value}`` tags become ``name`` or ``name=value``."""
    tags = reader.take("tags", list, default=[])
    result: list[str] = []
    for index, tag in enumerate(tags):
        if isinstance(tag, str):
            result.append(tag)
        elif isinstance(tag, dict) and isinstance(tag.get("name"), str):
            value = tag.get("value")
            result.append(tag["name"] if value in (None, "") else f"{tag['name']}={value}")
        else:
            reader.error(f"tags[{index}]", "Must be a string or a mapping with 'name' (and 'value').")
    if len(result) > 50 or any(len(t) > 128 for t in result):
        reader.error("tags", "At most 50 tags of at most 128 characters.")
    return result


def _json_schema(reader: _Reader, key: str) -> dict[str, Any]:
    schema = reader.take(key, dict, default={})
    for message in json_schema_errors(schema) if schema else ():
        reader.error(key, message)
    return schema


def relative_path_problem(value: str) -> str | None:
    """Why ``value`` is not a path inside the pack, if it is not."""
    parts = value.replace("\\", "/").split("/")
    if not value or value.startswith(("/", "~")) or ".." in parts or "\x00" in value:
        return "Must be a path inside the pack (relative, without '..')."
    return None


def parse_pack_meta(text: str, errors: PackErrors) -> tuple[str, dict[str, Any]] | None:
    """The pack's name and its metadata fields from ``pack.yaml``."""
    document = load_yaml("pack.yaml", text, errors)
    if document is None:
        return None
    reader = _Reader("pack.yaml", document, errors, "pack.yaml")
    ref = reader.take("ref", str)
    name = reader.take("name", str)
    pack_name = ref or name
    if pack_name is None:
        reader.error("name", "Missing required field (give 'name', or 'ref' when the name is not a valid ref).")
    elif not PACK_NAME_PATTERN.match(pack_name):
        reader.error("ref" if ref else "name",
                     "A pack name is letters, digits, '_' and '-' (max 128); give a 'ref' if 'name' is not.")
    version = document.get("version")
    if version is not None and not isinstance(version, str):
        # YAML reads 1.10 as the float 1.1: insist on a string rather than guess.
        reader.known.add("version")
        reader.error("version", 'Must be a string; quote it (version: "1.0.0").')
        version = None
    else:
        version = reader.take("version", str, required=True)
    if version is not None and len(version) > 64:
        reader.error("version", "At most 64 characters.")
    meta = {
        "version": version,
        "description": reader.take("description", str, default=""),
        "author": reader.take("author", str, default=""),
        "email": reader.take("email", str, default=""),
        "keywords": reader.take("keywords", list, default=[]),
    }
    if not all(isinstance(k, str) for k in meta["keywords"]):
        reader.error("keywords", "Must be a list of strings.")
    for key in ("author", "email"):
        if len(meta[key]) > 255:
            reader.error(key, "At most 255 characters.")
    reader.reject_unknown()
    if pack_name is None or not PACK_NAME_PATTERN.match(pack_name):
        return None
    return pack_name, meta


def parse_config_schema(text: str, errors: PackErrors) -> dict[str, Any]:
    """``config.schema.yaml``: ``{key: {type, description, secret, required, default}}``."""
    file = "config.schema.yaml"
    document = load_yaml(file, text, errors)
    if document is None:
        return {}
    for key, problems in schema_errors(document).items():
        for message in problems:
            errors.add(file, key, message)
    return document


def parse_action(file: str, text: str, errors: PackErrors) -> Item | None:
    document = load_yaml(file, text, errors)
    if document is None:
        return None
    reader = _Reader(file, document, errors, "actions")
    name = _name(reader)
    runner_type = reader.take("runner_type", str, required=True)
    if runner_type is not None and runner_type not in RUNNER_TYPES:
        reader.error("runner_type", f"Unknown runner type {runner_type!r}; use one of {', '.join(RUNNER_TYPES)}.")
    entry_point = reader.take("entry_point", str, default="")
    if runner_type in NEEDS_ENTRY_POINT and not entry_point:
        reader.error("entry_point", f"The {runner_type} runner needs an entry_point.")
    elif entry_point and relative_path_problem(entry_point):
        reader.error("entry_point", relative_path_problem(entry_point))  # type: ignore[arg-type]
    parameters = reader.take("parameters", dict, default={})
    errors.merge(file, "parameters", schema_errors(parameters))
    timeout = reader.take("timeout", int)
    if timeout is not None and not 1 <= timeout <= MAX_TIMEOUT:
        reader.error("timeout", f"Must be from 1 to {MAX_TIMEOUT} seconds.")
    fields = {
        "runner_type": runner_type,
        "entry_point": entry_point,
        "description": reader.take("description", str, default=""),
        "enabled": reader.take("enabled", bool, default=True),
        "parameters": parameters,
        "output_schema": reader.take("output_schema", dict, default={}),
        "timeout": timeout,
        "retry": reader.take("retry", dict, default={}),
        "tags": _tags(reader),
    }
    reader.reject_unknown()
    return Item(name, file, fields) if name else None


def parse_trigger(file: str, document: dict[str, Any], errors: PackErrors, field_prefix: str = "") -> Item | None:
    """A trigger type, from ``triggers/*.yaml`` or inline in a sensor's ``trigger_types``."""
    # Inline in a sensor, fields are reported as trigger_types[i].<field>.
    reader = _PrefixedReader(file, document, errors, field_prefix) if field_prefix \
        else _Reader(file, document, errors, "triggers")
    name = _name(reader)
    fields = {
        "description": reader.take("description", str, default=""),
        "parameters_schema": _json_schema(reader, "parameters_schema"),
        "payload_schema": _json_schema(reader, "payload_schema"),
        "tags": _tags(reader),
    }
    reader.reject_unknown()
    return Item(name, file, fields) if name else None


class _PrefixedReader(_Reader):
    def __init__(self, file: str, document: dict[str, Any], errors: PackErrors, prefix: str) -> None:
        super().__init__(file, document, errors, "triggers")
        self.prefix = prefix

    def error(self, name: str, message: str) -> None:
        self.errors.add(self.file, f"{self.prefix}.{name}", message)


def parse_trigger_file(file: str, text: str, errors: PackErrors) -> Item | None:
    document = load_yaml(file, text, errors)
    return None if document is None else parse_trigger(file, document, errors)


def parse_sensor(file: str, text: str, errors: PackErrors) -> tuple[Item | None, list[Item]]:
    """The sensor and the trigger types it declares inline."""
    document = load_yaml(file, text, errors)
    if document is None:
        return None, []
    reader = _Reader(file, document, errors, "sensors")
    class_name = reader.take("class_name", str, required=True)
    if class_name is not None and not CLASS_NAME_PATTERN.match(class_name):
        reader.error("class_name", "Must be a Python class name.")
        class_name = None
    name = _name(reader) if "name" in document else class_name
    entry_point = reader.take("entry_point", str, required=True)
    if entry_point and relative_path_problem(entry_point):
        reader.error("entry_point", relative_path_problem(entry_point))  # type: ignore[arg-type]
    poll_interval = reader.take("poll_interval", int)
    if poll_interval is not None and poll_interval < 1:
        reader.error("poll_interval", "Must be at least 1 second.")
    inline: list[Item] = []
    named: list[str] = []
    for index, entry in enumerate(reader.take("trigger_types", list, default=[])):
        if isinstance(entry, str):
            named.append(entry)
        elif isinstance(entry, dict):
            trigger = parse_trigger(file, entry, errors, field_prefix=f"trigger_types[{index}]")
            if trigger is not None:
                inline.append(trigger)
        else:
            reader.error(f"trigger_types[{index}]", "Must be a trigger type name or a mapping with 'name'.")
    fields = {
        "class_name": class_name,
        "entry_point": entry_point,
        "description": reader.take("description", str, default=""),
        "enabled": reader.take("enabled", bool, default=True),
        "poll_interval": poll_interval,
        "tags": _tags(reader),
    }
    reader.reject_unknown()
    sensor = Item(name, file, fields, refs={"inline": [t.name for t in inline], "named": named}) if name else None
    return sensor, inline


def parse_rule(file: str, text: str, pack_name: str, errors: PackErrors) -> Item | None:
    document = load_yaml(file, text, errors)
    if document is None:
        return None
    reader = _Reader(file, document, errors, "rules")
    name = _name(reader)
    if document.get("pack") not in (None, pack_name):
        reader.error("pack", f"The rule is in pack {pack_name!r}; remove 'pack' or set it to that.")
    trigger = reader.take("trigger", dict, default={}, required=True)
    action = reader.take("action", dict, default={}, required=True)
    trigger_ref = _ref_in(reader, trigger, "trigger", "type") if "trigger" in document else None
    trigger_ref = canonical_trigger_ref(trigger_ref) if trigger_ref else trigger_ref  # StackStorm's names
    action_ref = _ref_in(reader, action, "action", "ref") if "action" in document else None
    trigger_parameters = _mapping_in(reader, trigger, "trigger", "parameters")
    action_parameters = _mapping_in(reader, action, "action", "parameters")
    for block, allowed in ((trigger, {"type", "parameters", "ref"}), (action, {"ref", "parameters"})):
        label = "trigger" if block is trigger else "action"
        for key in sorted(set(block) - allowed):
            reader.error(f"{label}.{key}", "Unknown field.")
    criteria = reader.take("criteria", dict, default={})
    errors.merge(file, "criteria", criteria_errors(criteria))
    fields = {
        "description": reader.take("description", str, default=""),
        "enabled": reader.take("enabled", bool, default=True),
        "trigger_parameters": trigger_parameters,
        "criteria": criteria,
        "action_parameters": action_parameters,
        "tags": _tags(reader),
    }
    reader.reject_unknown()
    if not name:
        return None
    return Item(name, file, fields, refs={"trigger": trigger_ref, "action": action_ref})


def _ref_in(reader: _Reader, block: dict[str, Any], label: str, key: str) -> str | None:
    # StackStorm writes trigger.type; trigger.ref is accepted as a synonym.
    value = block.get(key, block.get("ref") if label == "trigger" else None)
    if value is None:
        reader.error(f"{label}.{key}", "Missing required field.")
        return None
    if not isinstance(value, str) or not REF_PATTERN.match(value):
        reader.error(f"{label}.{key}", "Must be a ref: '<pack>.<name>'.")
        return None
    return value


def _mapping_in(reader: _Reader, block: dict[str, Any], label: str, key: str) -> dict[str, Any]:
    value = block.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        reader.error(f"{label}.{key}", "Must be a mapping.")
        return {}
    return value
