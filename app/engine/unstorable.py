"""Text PostgreSQL cannot store: NUL characters and unpaired UTF-16 surrogates.

JSON may spell both (``"\\u0000"``, ``"\\ud800"``); Python decodes them happily, but
PostgreSQL refuses NUL in text and JSONB, and a lone surrogate cannot even be encoded as
UTF-8 for the wire. Refusing them where the request is parsed names the field, instead of
failing deep in a query; what must be written all the same is spelled out (``storable``: the
audit log) or replaced with U+FFFD (``replace_unstorable``: an action's output).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

SURROGATE = re.compile("[\ud800-\udfff]")
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    if "\x00" in text:
        return "Must not contain NUL characters."
    # json.loads joins a valid surrogate pair into one character, so any left is unpaired.
    if SURROGATE.search(text):
        return "Must be valid Unicode (no unpaired surrogates)."
    return None


def find_unstorable(value: Any) -> tuple[list[str], str] | None:
    """The path (keys and list indexes) of the first unstorable string in a JSON value."""
    # Iterative, children pushed in reverse: document order, and a body nested as deep as the
    # JSON decoder allows cannot overflow the stack.
    stack: list[tuple[list[str], Any, Any]] = [([], None, value)]
    while stack:
        path, key, item = stack.pop()
        problem = text_problem(key) if isinstance(key, str) else None
        if problem:
            return path[:-1] + [storable(key)], "Field names: " + problem[0].lower() + problem[1:]
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return path, problem
        elif isinstance(item, dict):
            stack.extend(reversed([(path + [str(k)], k, child) for k, child in item.items()]))
        elif isinstance(item, list):
            stack.extend(reversed([(path + [str(index)], None, child) for index, child in enumerate(item)]))
    return None


def nested_errors(path: list[str], message: str) -> dict[str, Any]:
    """``["a", "b"]`` -> ``{"a": {"b": [message]}}`` (marshmallow's shape); top level is ``_schema``."""
    errors: Any = [message]
    for key in reversed(path or ["_schema"]):
        errors = {key: errors}
    return errors


def storable(text: str) -> str:
    """``text`` with NUL and unpaired surrogates spelled out, for records that must be written."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def replace_unstorable(text: str) -> str:
    """``text`` with NUL and unpaired surrogates turned into U+FFFD (as undecodable bytes are)."""
    return UNSTORABLE.sub(REPLACEMENT, text) if UNSTORABLE.search(text) else text


def map_strings(value: Any, fix: Callable[[str], str]) -> Any:
    """``value`` (any JSON) with ``fix`` applied to every string and every key."""
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, dict):
        return {fix(str(k)): map_strings(v, fix) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [map_strings(v, fix) for v in value]
    return value


def unstorable_errors(value: Any, max_depth: int) -> list[str]:
    """Why PostgreSQL could not store ``value`` (unstorable text, or nesting past ``max_depth``)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:  # iterative: the input may be nested deeper than Python recursion allows
        item, depth = stack.pop()
        if depth > max_depth:
            return [f"Nested deeper than {max_depth} levels."]
        if isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return [problem]
    return []
