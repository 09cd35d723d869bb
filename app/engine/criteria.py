"""Rule criteria: ``{"trigger.body.status": {"type": "equals", "pattern": "down"}}``.

Operators are pure functions ``(value, pattern) -> bool``; the names (and their aliases)
follow StackStorm so existing rules load unchanged.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

MISSING = object()
# What converting an event's value may raise: a payload is anyone's input, an operator never
# raises on it (a huge number overflows float() or timedelta, a huge timestamp fromtimestamp).
_BAD_VALUE = (TypeError, ValueError, OverflowError, OSError)


def _search(value: Any, pattern: Any) -> bool:
    return isinstance(value, str) and isinstance(pattern, str) and re.search(pattern, value) is not None


def _match_start(value: Any, pattern: Any) -> bool:
    # StackStorm's (deprecated) matchregex: anchored at the start, '.' matches newlines.
    return isinstance(value, str) and isinstance(pattern, str) and re.match(pattern, value, re.DOTALL) is not None


def _iequals(value: Any, pattern: Any) -> bool:
    return isinstance(value, str) and isinstance(pattern, str) and value.lower() == pattern.lower()


def _contains(value: Any, pattern: Any) -> bool:
    try:
        return pattern in value
    except TypeError:
        return False


def _icontains(value: Any, pattern: Any) -> bool:
    return isinstance(value, str) and isinstance(pattern, str) and pattern.lower() in value.lower()


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(value: Any, pattern: Any) -> bool:
        try:
            return op(float(value), float(pattern)) if not isinstance(value, str) or not isinstance(pattern, str) else op(value, pattern)
        except _BAD_VALUE:
            return False

    return compare


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except _BAD_VALUE:
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _timediff_lt(value: Any, pattern: Any) -> bool:
    moment = _parse_time(value)
    try:
        return moment is not None and datetime.now(UTC) - moment < timedelta(seconds=float(pattern))
    except _BAD_VALUE:
        return False


def _timediff_gt(value: Any, pattern: Any) -> bool:
    moment = _parse_time(value)
    try:
        return moment is not None and datetime.now(UTC) - moment > timedelta(seconds=float(pattern))
    except _BAD_VALUE:
        return False


def _inside(value: Any, pattern: Any) -> bool:
    return _contains(pattern, value)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": lambda v, p: v == p,
    "nequals": lambda v, p: v != p,
    "iequals": _iequals,
    "lessthan": _compare(lambda a, b: a < b),
    "greaterthan": _compare(lambda a, b: a > b),
    "matchwildcard": lambda v, p: isinstance(v, str) and isinstance(p, str) and fnmatch.fnmatchcase(v, p),
    # As in StackStorm: regex/iregex find the pattern anywhere (anchor it with ^...$ to match
    # the whole value); matchregex matches at the start.
    "regex": _search,
    "matchregex": _match_start,
    "search": _search,
    "iregex": lambda v, p: isinstance(v, str) and isinstance(p, str) and re.search(p, v, re.IGNORECASE) is not None,
    "contains": _contains,
    "ncontains": lambda v, p: not _contains(v, p),
    "icontains": _icontains,
    "nicontains": lambda v, p: not _icontains(v, p),
    "startswith": lambda v, p: isinstance(v, str) and isinstance(p, str) and v.startswith(p),
    "istartswith": lambda v, p: isinstance(v, str) and isinstance(p, str) and v.lower().startswith(p.lower()),
    "endswith": lambda v, p: isinstance(v, str) and isinstance(p, str) and v.endswith(p),
    "iendswith": lambda v, p: isinstance(v, str) and isinstance(p, str) and v.lower().endswith(p.lower()),
    "inside": _inside,
    "ninside": lambda v, p: not _inside(v, p),
    "timediff_lt": _timediff_lt,
    "timediff_gt": _timediff_gt,
    "exists": lambda v, p: v is not MISSING,
    "nexists": lambda v, p: v is MISSING,
}
ALIASES = {
    "eq": "equals", "neq": "nequals", "lt": "lessthan", "gt": "greaterthan",
    "ieq": "iequals", "in": "inside", "nin": "ninside", "exist": "exists",
    "incontains": "nicontains", "td_lt": "timediff_lt", "td_gt": "timediff_gt",
}
NEEDS_NO_PATTERN = {"exists", "nexists"}
REGEX_OPERATORS = {"regex", "matchregex", "search", "iregex"}


def operator_name(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    name = name.lower()
    name = ALIASES.get(name, name)
    return name if name in OPERATORS else None


def criteria_errors(criteria: Any) -> dict[str, list[str]]:
    """Problems with a criteria dict, keyed by its keys (empty when valid)."""
    if not isinstance(criteria, dict):
        return {"_schema": ["Criteria must be an object mapping 'trigger.<path>' to {type, pattern}."]}
    errors: dict[str, list[str]] = {}
    for key, criterion in criteria.items():
        problems = []
        if not isinstance(key, str) or not key.startswith("trigger."):
            problems.append("Criteria keys are paths into the event such as 'trigger.body.status'.")
        if not isinstance(criterion, dict):
            errors[str(key)] = problems + ["Each criterion must be an object with 'type' and 'pattern'."]
            continue
        name = operator_name(criterion.get("type"))
        if name is None:
            known = ", ".join(sorted(OPERATORS))
            problems.append(f"Unknown operator {criterion.get('type')!r}; use one of: {known}.")
        elif name not in NEEDS_NO_PATTERN and "pattern" not in criterion:
            problems.append(f"Operator {name!r} needs a 'pattern'.")
        elif name in REGEX_OPERATORS and isinstance(criterion.get("pattern"), str) and "{{" not in criterion["pattern"]:
            try:
                re.compile(criterion["pattern"])
            except re.error as exc:
                problems.append(f"'pattern' is not a valid regular expression: {exc}.")
        extra = set(criterion) - {"type", "pattern"}
        if extra:
            problems.append(f"Unknown keys: {', '.join(sorted(map(str, extra)))}.")
        if problems:
            errors[str(key)] = problems
    return errors


def lookup(payload: Any, path: str) -> Any:
    """Value at ``trigger.a.b.0`` in the event payload, or MISSING."""
    current: Any = {"trigger": payload}
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def evaluate(criterion: dict[str, Any], value: Any, pattern: Any) -> bool:
    operator = OPERATORS[operator_name(criterion["type"])]  # type: ignore[index]
    if value is MISSING and operator_name(criterion["type"]) not in NEEDS_NO_PATTERN:
        return False
    return bool(operator(value, pattern))
