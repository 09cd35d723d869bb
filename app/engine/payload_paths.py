"""Paths into an event: ``trigger.body.items.0.id`` or ``trigger.headers['X-GitHub-Event']``.

As in StackStorm, ``#`` and what follows it (outside brackets) is a label, not part of the
path: ``trigger.count#low`` and ``trigger.count#high`` are two criteria on ``trigger.count``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from app.engine.criteria import MISSING

_LABEL = re.compile(r"""^((?:\[(?:'[^']*'|"[^"]*"|[^\]]*)\]|[^#\[])*)#.*$""", re.DOTALL)
_SEGMENT = re.compile(r"""\.?(?:\[(?:'([^']*)'|"([^"]*)"|(-?\d+))\]|([^.\[\]]+))""")


@lru_cache(maxsize=1024)
def parse_path(path: str) -> tuple[str, ...] | None:
    """The parts of ``path`` (a bracketed part kept whole, dots and all), or None if malformed."""
    parts: list[str] = []
    position = 0
    while position < len(path):
        found = _SEGMENT.match(path, position)
        if found is None or (position == 0 and path.startswith(".")):
            return None
        parts.append(next(group for group in found.groups() if group is not None))
        position = found.end()
    return tuple(parts) or None


def without_label(path: str) -> str:
    """``path`` without its ``#label`` (criteria keys must be unique; labels make them so)."""
    labelled = _LABEL.match(path)
    return labelled.group(1) if labelled else path


def lookup(document: Any, path: str, root: str = "trigger") -> Any:
    """The value at ``path`` (which starts with ``root``; a ``#label`` is ignored) in ``document``, or MISSING."""
    parts = parse_path(without_label(path))
    if not parts or parts[0] != root:
        return MISSING
    current = document
    for part in parts[1:]:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current
