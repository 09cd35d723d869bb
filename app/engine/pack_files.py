"""Parsing the files of a pack (StackStorm layout), without touching disk or database.

The loader reads the files and hands their text here; this module translates each document
to the fields the API uses, checks them with the same checks the API uses
(app/engine/content_checks.py), and collects every problem as
``errors[<file>][<field>] = [messages]`` so one answer can name all of them. References to
other content (a rule's action, a sensor's named trigger types) and entry-point files are
checked by the loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from app.engine.content_checks import (
    ACTION_FIELDS,
    MISSING,
    PACK_NAME_PATTERN,
    SENSOR_FIELDS,
    TRIGGER_FIELDS,
    action_problems,
    rule_problems,
    sensor_problems,
    trigger_problems,
    type_message,
)
from app.engine.parameters import schema_errors
from app.engine.trigger_aliases import canonical_trigger_ref

# A YAML document may not expand into more nodes than this (anchors/aliases can make a
# small file huge), nor nest deeper.
MAX_NODES = 20_000
MAX_DEPTH = 32

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
    # For rules: the refs to resolve; for sensors: the refs of the trigger types named by string.
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
    """Takes typed fields out of ``pack.yaml``, recording problems against it."""

    def __init__(self, file: str, document: dict[str, Any], errors: PackErrors, kind: str) -> None:
        self.file, self.doc, self.errors = file, document, errors
        self.known: set[str] = set(IGNORED_KEYS.get(kind, ()))

    def take(self, name: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        self.known.add(name)
        value = self.doc.get(name)
        if value is None:
            if required:
                self.error(name, MISSING)
            return default
        if isinstance(value, bool) and kind in (int, (int, float)) or not isinstance(value, kind):
            self.error(name, type_message(kind))
            return default
        return value

    def error(self, name: str, message: str) -> None:
        self.errors.add(self.file, name, message)

    def reject_unknown(self) -> None:
        for key in sorted(set(self.doc) - self.known):
            self.error(key, "Unknown field.")


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


def parse_action(file: str, text: str, pack_name: str, errors: PackErrors) -> Item | None:
    document = load_yaml(file, text, errors)
    if document is None:
        return None
    data = _known_fields(file, document, errors, "actions", ACTION_FIELDS)
    data.update(pack=pack_name, **_tags(file, document, errors))
    problems = action_problems(data)
    report_problems(errors, file, problems)
    fields = _valid(data, problems, {
        "runner_type": None, "entry_point": "", "description": "", "enabled": True, "parameters": {},
        "output_schema": {}, "timeout": None, "retry": {}, "tags": []})
    return _item(data, problems, file, fields)


def parse_trigger(file: str, document: dict[str, Any], pack_name: str, errors: PackErrors,
                  field_prefix: str = "") -> Item | None:
    """A trigger type, from ``triggers/*.yaml`` or inline in a sensor's ``trigger_types``."""
    # Inline in a sensor, fields are reported as trigger_types[i].<field>.
    data = _known_fields(file, document, errors, "triggers", TRIGGER_FIELDS, field_prefix)
    data.update(pack=pack_name, **_tags(file, document, errors, field_prefix))
    problems = trigger_problems(data)
    report_problems(errors, file, problems, prefix=field_prefix)
    fields = _valid(data, problems, {"description": "", "parameters_schema": {}, "payload_schema": {}, "tags": []})
    return _item(data, problems, file, fields)


def parse_trigger_file(file: str, text: str, pack_name: str, errors: PackErrors) -> Item | None:
    document = load_yaml(file, text, errors)
    return None if document is None else parse_trigger(file, document, pack_name, errors)


def parse_sensor(file: str, text: str, pack_name: str, errors: PackErrors) -> tuple[Item | None, list[Item]]:
    """The sensor and the trigger types it declares inline.

    StackStorm's ``trigger_types`` lists names (of this pack's trigger types, or refs) and
    whole trigger types; the sensor keeps the refs of both, inline ones first.
    """
    document = load_yaml(file, text, errors)
    if document is None:
        return None, []
    data = _known_fields(file, document, errors, "sensors", SENSOR_FIELDS)
    data.update(pack=pack_name, **_tags(file, document, errors))
    named_default = "name" not in data and isinstance(data.get("class_name"), str)
    if named_default:
        data["name"] = data["class_name"]  # StackStorm names a sensor by its class
    inline: list[Item] = []
    named: list[str] = []
    entries = data.get("trigger_types")
    if isinstance(entries, list):
        for index, entry in enumerate(entries):
            if isinstance(entry, str):
                named.append(entry if "." in entry else f"{pack_name}.{entry}")
            elif isinstance(entry, dict):
                trigger = parse_trigger(file, entry, pack_name, errors, field_prefix=f"trigger_types[{index}]")
                if trigger is not None:
                    inline.append(trigger)
            else:
                errors.add(file, f"trigger_types[{index}]", "Must be a trigger type name or a mapping with 'name'.")
        data["trigger_types"] = [f"{pack_name}.{t.name}" for t in inline] + named
    problems = sensor_problems(data)
    if named_default and "class_name" in problems:
        problems.pop("name", None)  # the class name's problem says it
    report_problems(errors, file, problems)
    fields = _valid(data, problems, {"class_name": None, "entry_point": "", "description": "", "enabled": True,
                                     "poll_interval": None, "tags": [], "trigger_types": []})
    sensor = _item(data, problems, file, fields)
    if sensor is not None:
        sensor.refs = {"named": named}
    return sensor, inline


# Where a rule file (StackStorm's layout) holds the fields the API gives flat.
RULE_FILE_FIELDS = {"trigger": "trigger.type", "trigger_parameters": "trigger.parameters",
                    "action": "action.ref", "action_parameters": "action.parameters"}


def parse_rule(file: str, text: str, pack_name: str, errors: PackErrors) -> Item | None:
    document = load_yaml(file, text, errors)
    if document is None:
        return None
    own = ("name", "description", "tags", "enabled", "criteria")
    data = _known_fields(file, document, errors, "rules", (*own, "trigger", "action"))
    data = {key: data[key] for key in own if key in data}
    data.update(pack=pack_name, **_tags(file, document, errors))
    if document.get("pack") not in (None, pack_name):
        errors.add(file, "pack", f"The rule is in pack {pack_name!r}; remove 'pack' or set it to that.")
    blocks = []
    for label, key, allowed in (("trigger", "type", {"type", "parameters", "ref"}), ("action", "ref", {"ref", "parameters"})):
        block = document.get(label)
        if not isinstance(block, dict):
            errors.add(file, label, MISSING if block is None else type_message(dict))
            continue
        blocks.append(label)
        # StackStorm writes trigger.type; trigger.ref is accepted as a synonym.
        ref = block.get(key, block.get("ref") if label == "trigger" else None)
        if ref is not None:
            data[label] = ref
        if block.get("parameters") is not None:
            data[f"{label}_parameters"] = block["parameters"]
        for extra in sorted(set(block) - allowed):
            errors.add(file, f"{label}.{extra}", "Unknown field.")
    problems = rule_problems(data)
    for label in ("trigger", "action"):
        if label not in blocks:
            problems.pop(label, None)  # the missing block is reported as itself
    report_problems(errors, file, problems, rename=RULE_FILE_FIELDS)
    fields = _valid(data, problems, {"description": "", "enabled": True, "trigger_parameters": {}, "criteria": {},
                                     "action_parameters": {}, "tags": []})
    item = _item(data, problems, file, fields)
    if item is None:
        return None
    trigger_ref = data.get("trigger") if "trigger" not in problems else None
    item.refs = {"trigger": canonical_trigger_ref(trigger_ref) if trigger_ref else None,  # StackStorm's names
                 "action": data.get("action") if "action" not in problems else None}
    return item


def _known_fields(file: str, document: dict[str, Any], errors: PackErrors, kind: str, fields: tuple[str, ...],
                  prefix: str = "") -> dict[str, Any]:
    """The document's values of ``fields`` (None counts as not given); any key neither a field
    nor one of StackStorm's ignored ones is an unknown field."""
    for key in sorted(set(document) - set(fields) - IGNORED_KEYS[kind]):
        errors.add(file, f"{prefix}.{key}" if prefix else key, "Unknown field.")
    return {key: document[key] for key in fields if document.get(key) is not None and key != "tags"}


def _tags(file: str, document: dict[str, Any], errors: PackErrors, prefix: str = "") -> dict[str, Any]:
    """``{"tags": [...]}`` as strings; StackStorm's ``{name, value}`` tags become ``name`` or ``name=value``."""
    tags = document.get("tags")
    if not isinstance(tags, list):
        return {} if tags is None else {"tags": tags}  # not a list: the check says so
    result: list[str] = []
    for index, tag in enumerate(tags):
        if isinstance(tag, str):
            result.append(tag)
        elif isinstance(tag, dict) and isinstance(tag.get("name"), str):
            value = tag.get("value")
            result.append(tag["name"] if value in (None, "") else f"{tag['name']}={value}")
        else:
            field_name = f"tags[{index}]"
            errors.add(file, f"{prefix}.{field_name}" if prefix else field_name,
                       "Must be a string or a mapping with 'name' (and 'value').")
    return {"tags": result}


def report_problems(errors: PackErrors, file: str, problems: dict[str, Any], rename: dict[str, str] | None = None,
            prefix: str = "") -> None:
    """Record the shared check's problems against ``file``, parts flattened (``parameters.x``)."""
    for key, found in problems.items():
        if key == "pack":
            continue  # a pack file's pack is its pack.yaml's, checked there
        name = (rename or {}).get(key, key)
        name = f"{prefix}.{name}" if prefix else name
        if isinstance(found, dict):
            errors.merge(file, name, found)
        else:
            for message in found:
                errors.add(file, name, message)


def _valid(data: dict[str, Any], problems: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The model fields: each given value that had no problem, else its default."""
    return {key: data[key] if key in data and key not in problems else default for key, default in defaults.items()}


def _item(data: dict[str, Any], problems: dict[str, Any], file: str, fields: dict[str, Any]) -> Item | None:
    name = data.get("name")
    return Item(name, file, fields) if isinstance(name, str) and "name" not in problems else None
