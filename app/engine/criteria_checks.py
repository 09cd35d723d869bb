"""What is wrong with a rule's criteria, found when the rule is saved rather than when it fires.

A criteria document maps paths into the event (``trigger.body.status``, or StackStorm's
``trigger.headers['X-GitHub-Event']``, with an optional ``#label`` so one path can have
several criteria) to ``{type, pattern}``; ``search`` takes a
``condition`` and nested criteria over ``item.<path>``; the keys ``any`` and ``all`` hold a
list of criteria documents (OR / AND groups, nestable).
"""

from __future__ import annotations

import re
from typing import Any

from app.engine.criteria import (
    NEEDS_NO_PATTERN,
    OPERATORS,
    REGEX_OPERATORS,
    SEARCH_CONDITIONS,
    operator_name,
)
from app.engine.payload_paths import parse_path, without_label
from app.engine.schema_patterns import PatternTooLarge, compile_pattern

GROUPS = ("any", "all")
MAX_DEPTH = 8  # groups and searches nested deeper than this are refused (and never needed)


def criteria_errors(criteria: Any, root: str = "trigger", depth: int = 0) -> dict[str, list[str]]:
    """Problems with a criteria dict, keyed by its keys (empty when valid)."""
    if not isinstance(criteria, dict):
        return {"_schema": [f"Criteria must be an object mapping '{root}.<path>' to {{type, pattern}}."]}
    if depth > MAX_DEPTH:
        return {"_schema": [f"Criteria are nested more than {MAX_DEPTH} levels deep."]}
    errors: dict[str, list[str]] = {}
    for key, criterion in criteria.items():
        if key in GROUPS:
            problems = _group_errors(key, criterion, root, depth)
        else:
            problems = _criterion_errors(key, criterion, root, depth)
        if problems:
            errors[str(key)] = problems
    return errors


def _group_errors(key: str, members: Any, root: str, depth: int) -> list[str]:
    if not isinstance(members, list) or not members:
        return [f"'{key}' holds a non-empty list of criteria objects."]
    problems = []
    for index, member in enumerate(members):
        for inner, messages in criteria_errors(member, root, depth + 1).items():
            problems.extend(f"[{index}] {inner}: {message}" for message in messages)
    return problems


def _criterion_errors(key: Any, criterion: Any, root: str, depth: int) -> list[str]:
    problems = []
    parts = parse_path(without_label(key)) if isinstance(key, str) else None
    if parts is None or parts[0] != root:
        problems.append(f"Criteria keys are paths into the event such as '{root}.body.status' "
                        f"(or groups: {', '.join(GROUPS)}).")
    if not isinstance(criterion, dict):
        return problems + ["Each criterion must be an object with 'type' and 'pattern'."]
    name = operator_name(criterion.get("type"))
    allowed = {"type", "pattern"}
    if name is None:
        problems.append(f"Unknown operator {criterion.get('type')!r}; use one of: {', '.join(sorted(OPERATORS))}.")
    elif name not in NEEDS_NO_PATTERN and "pattern" not in criterion:
        problems.append(f"Operator {name!r} needs a 'pattern'.")
    elif name == "search":
        allowed.add("condition")
        problems.extend(_search_errors(criterion, depth))
    elif name in REGEX_OPERATORS:
        problems.extend(_regex_errors(criterion["pattern"]))
    extra = set(criterion) - allowed
    if extra:
        problems.append(f"Unknown keys: {', '.join(sorted(map(str, extra)))}.")
    return problems


def _search_errors(criterion: dict[str, Any], depth: int) -> list[str]:
    problems = []
    if criterion.get("condition") not in SEARCH_CONDITIONS:
        problems.append(f"'search' needs a 'condition': one of {', '.join(SEARCH_CONDITIONS)}.")
    pattern = criterion.get("pattern")
    if isinstance(pattern, str):
        return problems + ["'search' matches the items of a list with nested criteria over 'item.<path>' "
                           "(for a regular expression use 'regex')."]
    if not isinstance(pattern, dict) or not pattern:
        return problems + ["'search' needs a 'pattern' object of criteria over 'item.<path>'."]
    for inner, messages in criteria_errors(pattern, "item", depth + 1).items():
        problems.extend(f"{inner}: {message}" for message in messages)
    return problems


def _regex_errors(pattern: Any) -> list[str]:
    if not isinstance(pattern, str) or "{{" in pattern:
        return []  # templates are checked once rendered, when the rule is evaluated
    try:
        compile_pattern(pattern)
    except (re.error, PatternTooLarge) as exc:
        return [f"'pattern' is not a valid regular expression: {exc}."]
    return []
