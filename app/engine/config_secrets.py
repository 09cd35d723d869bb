"""Where a pack config's secrets are: paths declared ``secret: true`` in its schema, at any
depth (StackStorm's flat ``config.schema.yaml`` form, whose entries may have ``properties``,
or a whole JSON Schema). Pure: the service (app/services/pack_config.py) stores them."""

from __future__ import annotations

import copy
from typing import Any

from app.engine.parameters import is_json_schema

Path = tuple[str, ...]
_ABSENT = object()


def secret_config_paths(config_schema: Any) -> list[Path]:
    """Every path declared ``secret: true`` (a secret object is secret whole)."""
    found: list[Path] = []

    def walk(properties: Any, prefix: Path, depth: int) -> None:
        if not isinstance(properties, dict) or depth > 32:
            return
        for name, prop in properties.items():
            if not isinstance(prop, dict):
                continue
            if prop.get("secret") is True:
                found.append((*prefix, str(name)))
            else:
                walk(prop.get("properties"), (*prefix, str(name)), depth + 1)

    if isinstance(config_schema, dict):
        walk(config_schema.get("properties") if is_json_schema(config_schema) else config_schema, (), 0)
    return sorted(found)


def pointer(path: Path) -> str:
    """JSON Pointer (RFC 6901) of a path: the key its value has in Vault."""
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in path)


def from_pointer(text: str) -> Path:
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/"))


def value_at(config: Any, path: Path) -> Any:
    """The value at ``path``, or ``ABSENT``."""
    for part in path:
        if not isinstance(config, dict) or part not in config:
            return _ABSENT
        config = config[part]
    return config


def is_absent(value: Any) -> bool:
    return value is _ABSENT


def with_values(config: dict[str, Any], values: dict[Path, Any]) -> dict[str, Any]:
    """A copy of ``config`` with ``values`` set at their paths (missing objects created)."""
    result = copy.deepcopy(config)
    for path, value in values.items():
        node = result
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return result
