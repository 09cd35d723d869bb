"""What makes an action, trigger type, sensor or rule valid: one check for the API and pack files.

``action_problems``, ``trigger_problems``, ``sensor_problems`` and ``rule_problems`` take the
fields of one item as plain JSON values, named as the API names them (a pack file's document
is translated to those names first, app/engine/pack_files.py), and answer
``{field: [messages]}`` (``{field: {part: [messages]}}`` for parameters and criteria), empty
when valid. A None value counts as not given, as a bare ``key:`` does in YAML. With
``partial`` (a PATCH) only the fields given are checked. References to other rows (a rule's
trigger and action, a sensor's trigger types) need the database: the services check those.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.engine.criteria_checks import criteria_errors
from app.engine.parameters import json_schema_errors, schema_errors
from app.engine.runner_types import MAX_TIMEOUT, NEEDS_ENTRY_POINT, RUNNER_TYPES

# \Z, not $: "$" also matches before a trailing newline, which would let "name\n" through.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
PACK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}\Z")
REF_PATTERN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+\Z")
CLASS_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}\Z")

NAME_MESSAGE = "Use letters, digits, '_', '-' and '.' (max 128), starting with a letter, digit or '_'."
PACK_NAME_MESSAGE = "Use letters, digits, '_' and '-' (max 128), starting with a letter, digit or '_'."
REF_MESSAGE = "Must be a ref: '<pack>.<name>'."
MISSING = "Missing required field."
PATH_MESSAGE = "Must be a path inside the pack (relative, without '..')."

MAX_REF = 257  # a pack name, '.', a name
MAX_DESCRIPTION = 10_000
MAX_TAGS, MAX_TAG = 50, 128
MAX_PATH = 1024
# Beat polls at most every second; a week is the longest interval that is still "polling".
MAX_POLL_INTERVAL = 7 * 24 * 3600
MAX_TRIGGER_TYPES = 50
RETRY_ON = ("failed", "timeout", "abandoned")

# The fields of each kind, as the API names them (a pack file's rule nests some of them).
COMMON_FIELDS = ("name", "description", "tags")
ACTION_FIELDS = (*COMMON_FIELDS, "enabled", "runner_type", "entry_point", "parameters", "output_schema", "timeout",
                 "retry")
TRIGGER_FIELDS = (*COMMON_FIELDS, "parameters_schema", "payload_schema")
SENSOR_FIELDS = (*COMMON_FIELDS, "enabled", "class_name", "entry_point", "poll_interval", "trigger_types")
RULE_FIELDS = (*COMMON_FIELDS, "enabled", "trigger", "trigger_parameters", "criteria", "action", "action_parameters")

Problems = dict[str, Any]

_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer", float: "a number",
               dict: "a mapping", list: "a list"}


def type_message(kind: type | tuple[type, ...]) -> str:
    """``Must be a string.`` and the like, for a value of the wrong JSON/YAML type."""
    names = " or ".join(_TYPE_NAMES[k] for k in kind) if isinstance(kind, tuple) else _TYPE_NAMES[kind]
    return f"Must be {names}."


def relative_path_problem(value: str) -> str | None:
    """Why ``value`` is not a path inside the pack, if it is not."""
    parts = value.replace("\\", "/").split("/")
    if not value or value.startswith(("/", "~")) or ".." in parts or "\x00" in value:
        return PATH_MESSAGE
    return None


def entry_point_problem(runner_type: Any, entry_point: Any) -> str | None:
    """Why an action of ``runner_type`` cannot have ``entry_point`` (a PATCH checks the result)."""
    if runner_type in NEEDS_ENTRY_POINT and not entry_point:
        return f"The {runner_type} runner needs an entry_point."
    return None


def retry_problems(retry: Any) -> list[str]:
    """Problems with an action's ``retry`` ({retries, delay, on}), empty when valid."""
    if not isinstance(retry, dict):
        return ["Must be an object {retries, delay, on}."]
    problems = []
    extra = set(retry) - {"retries", "delay", "on"}
    if extra:
        problems.append(f"Unknown keys: {', '.join(sorted(extra))}.")
    retries = retry.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        problems.append("'retries' must be an integer from 0 to 10.")
    delay = retry.get("delay", 0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 3600:
        problems.append("'delay' must be a number of seconds from 0 to 3600.")
    on = retry.get("on", ["failed"])
    if not isinstance(on, list) or not set(on) <= set(RETRY_ON):
        problems.append(f"'on' must be a list of: {', '.join(RETRY_ON)}.")
    return problems


class _Check:
    """Reads typed fields out of ``data``, collecting problems by field."""

    def __init__(self, data: Mapping[str, Any], partial: bool) -> None:
        self.data, self.partial = data, partial
        self.problems: Problems = {}

    def take(self, field: str, kind: type | tuple[type, ...], required: bool = False) -> Any:
        """The value of ``field`` if it has the type, else None (with the problem noted)."""
        value = self.data.get(field)
        if value is None:
            if required and not self.partial:
                self.add(field, MISSING)
            return None
        if isinstance(value, bool) and kind in (int, (int, float)) or not isinstance(value, kind):
            self.add(field, type_message(kind))
            return None
        return value

    def add(self, field: str, message: str) -> None:
        self.problems.setdefault(field, []).append(message)

    def nested(self, field: str, problems: dict[str, list[str]]) -> None:
        if problems:
            self.problems[field] = problems

    def pattern(self, field: str, pattern: re.Pattern[str], message: str, required: bool = False,
                max_length: int | None = None) -> str | None:
        value = self.take(field, str, required)
        if value is not None and max_length is not None and len(value) > max_length:
            self.add(field, f"At most {max_length} characters.")
        elif value is not None and not pattern.match(value):
            self.add(field, message)
        else:
            return value
        return None

    def common(self, with_enabled: bool = True) -> None:
        """The fields every kind has: pack, name, description, tags (and enabled)."""
        self.pattern("pack", PACK_NAME_PATTERN, PACK_NAME_MESSAGE, required=True)
        self.pattern("name", NAME_PATTERN, NAME_MESSAGE, required=True)
        description = self.take("description", str)
        if description is not None and len(description) > MAX_DESCRIPTION:
            self.add("description", f"At most {MAX_DESCRIPTION} characters.")
        tags = self.take("tags", list)
        if tags is not None and not all(isinstance(tag, str) for tag in tags):
            self.add("tags", "Must be a list of strings.")
        elif tags is not None and (len(tags) > MAX_TAGS or any(len(tag) > MAX_TAG for tag in tags)):
            self.add("tags", f"At most {MAX_TAGS} tags of at most {MAX_TAG} characters.")
        if with_enabled:
            self.take("enabled", bool)

    def entry_point(self, required: bool) -> str | None:
        value = self.take("entry_point", str, required)
        if value is None or (not value and not required):
            return value
        problem = f"At most {MAX_PATH} characters." if len(value) > MAX_PATH else relative_path_problem(value)
        if problem:
            self.add("entry_point", problem)
        return value

    def seconds(self, field: str, maximum: int) -> None:
        value = self.take(field, int)
        if value is not None and not 1 <= value <= maximum:
            self.add(field, f"Must be from 1 to {maximum} seconds.")


def action_problems(data: Mapping[str, Any], *, partial: bool = False) -> Problems:
    """Problems with an action's fields (pack, name, runner_type, entry_point, parameters, ...)."""
    check = _Check(data, partial)
    check.common()
    runner_type = check.take("runner_type", str, required=True)
    if runner_type is not None and runner_type not in RUNNER_TYPES:
        check.add("runner_type", f"Unknown runner type {runner_type!r}; use one of {', '.join(RUNNER_TYPES)}.")
    entry_point = check.entry_point(required=False)
    if not partial and "entry_point" not in check.problems:
        problem = entry_point_problem(runner_type, entry_point)
        if problem:
            check.add("entry_point", problem)
    parameters = check.take("parameters", dict)
    if parameters is not None:
        check.nested("parameters", schema_errors(parameters))
    check.take("output_schema", dict)
    check.seconds("timeout", MAX_TIMEOUT)
    retry = check.take("retry", dict)
    if retry:
        for message in retry_problems(retry):
            check.add("retry", message)
    return check.problems


def trigger_problems(data: Mapping[str, Any], *, partial: bool = False) -> Problems:
    """Problems with a trigger type's fields (pack, name, parameters_schema, payload_schema, ...)."""
    check = _Check(data, partial)
    check.common(with_enabled=False)
    for field in ("parameters_schema", "payload_schema"):
        schema = check.take(field, dict)
        for message in json_schema_errors(schema) if schema else ():
            check.add(field, message)
    return check.problems


def sensor_problems(data: Mapping[str, Any], *, partial: bool = False) -> Problems:
    """Problems with a sensor's fields (class_name, entry_point, poll_interval, trigger_types, ...)."""
    check = _Check(data, partial)
    check.common()
    check.pattern("class_name", CLASS_NAME_PATTERN, "Must be a Python class name.", required=True)
    check.entry_point(required=True)
    check.seconds("poll_interval", MAX_POLL_INTERVAL)
    refs = check.take("trigger_types", list)
    if refs is not None:
        for ref in refs:
            if not isinstance(ref, str) or len(ref) > MAX_REF or not REF_PATTERN.match(ref):
                check.add("trigger_types", f"{ref!r} is not a ref: '<pack>.<name>'.")
        duplicates = sorted({ref for ref in refs if isinstance(ref, str) and refs.count(ref) > 1})
        if duplicates:
            check.add("trigger_types", f"Listed twice: {', '.join(duplicates)}.")
        if len(refs) > MAX_TRIGGER_TYPES:
            check.add("trigger_types", f"At most {MAX_TRIGGER_TYPES} trigger types.")
    return check.problems


def rule_problems(data: Mapping[str, Any], *, partial: bool = False) -> Problems:
    """Problems with a rule's own fields (trigger and action refs, criteria, parameter shapes, ...).

    Whether the trigger and action exist, and whether the parameters fit them, is checked
    against their rows (app/services/rules.py).
    """
    check = _Check(data, partial)
    check.common()
    for field in ("trigger", "action"):
        check.pattern(field, REF_PATTERN, REF_MESSAGE, required=True, max_length=MAX_REF)
    for field in ("trigger_parameters", "action_parameters"):
        check.take(field, dict)
    criteria = check.take("criteria", dict)
    if criteria is not None:
        check.nested("criteria", criteria_errors(criteria))
    return check.problems
