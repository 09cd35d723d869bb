"""Rule criteria operators: ``(value, pattern) -> bool``, with StackStorm's names and aliases.

``{"trigger.body.status": {"type": "equals", "pattern": "down"}}``: the operators are pure
functions, so existing StackStorm rules load unchanged. ``search`` is StackStorm's list
operator (its items are matched by nested criteria under ``item.``); it and the ``any`` /
``all`` groups are evaluated by app/engine/rule_matching.py. Validation of a criteria
document lives in app/engine/criteria_checks.py.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from app.engine.schema_patterns import compile_pattern

MISSING = object()
# What converting an event's value may raise: a payload is anyone's input, an operator never
# raises on it (a huge number overflows float() or timedelta, a huge timestamp fromtimestamp).
_BAD_VALUE = (TypeError, ValueError, OverflowError, OSError)
# Matching time one rule's criteria may spend on regular expressions, all of them together:
# a hostile pattern or payload costs at most this, never a hung worker.
REGEX_BUDGET_SECONDS = 0.25
_deadline: ContextVar[float | None] = ContextVar("criteria_regex_deadline", default=None)


class RegexTimeout(Exception):
    """The regular expressions of one evaluation ran out of REGEX_BUDGET_SECONDS."""


@contextmanager
def regex_budget() -> Iterator[None]:
    """Share one REGEX_BUDGET_SECONDS among the regex operators evaluated inside."""
    if _deadline.get() is not None:
        yield
        return
    token = _deadline.set(time.monotonic() + REGEX_BUDGET_SECONDS)
    try:
        yield
    finally:
        _deadline.reset(token)


def _regex(flags: str, anchored: bool) -> Callable[[Any, Any], bool]:
    def operator(value: Any, pattern: Any) -> bool:
        if not isinstance(value, str) or not isinstance(pattern, str):
            return False
        deadline = _deadline.get()
        remaining = REGEX_BUDGET_SECONDS if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            raise RegexTimeout
        compiled = compile_pattern(flags + pattern)
        try:
            found = (compiled.match if anchored else compiled.search)(value, timeout=remaining)
        except TimeoutError:
            raise RegexTimeout from None
        return found is not None

    return operator


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
            if isinstance(value, str) and isinstance(pattern, str):
                return op(value, pattern)
            return op(float(value), float(pattern))
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


def _timediff(op: Callable[[timedelta, timedelta], bool]) -> Callable[[Any, Any], bool]:
    def timediff(value: Any, pattern: Any) -> bool:
        moment = _parse_time(value)
        try:
            return moment is not None and op(datetime.now(UTC) - moment, timedelta(seconds=float(pattern)))
        except _BAD_VALUE:
            return False

    return timediff


def _inside(value: Any, pattern: Any) -> bool:
    return _contains(pattern, value)


def _strings(check: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    return lambda v, p: isinstance(v, str) and isinstance(p, str) and check(v, p)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": lambda v, p: v == p,
    "nequals": lambda v, p: v != p,
    "iequals": _iequals,
    "lessthan": _compare(lambda a, b: a < b),
    "greaterthan": _compare(lambda a, b: a > b),
    "matchwildcard": _strings(fnmatch.fnmatchcase),
    # As in StackStorm: regex/iregex find the pattern anywhere (anchor it with ^...$ to match
    # the whole value); matchregex matches at the start, with '.' matching newlines.
    "regex": _regex("", anchored=False),
    "iregex": _regex("(?i)", anchored=False),
    "matchregex": _regex("(?s)", anchored=True),
    "contains": _contains,
    "ncontains": lambda v, p: not _contains(v, p),
    "icontains": _icontains,
    "nicontains": lambda v, p: not _icontains(v, p),
    "startswith": _strings(str.startswith),
    "istartswith": _strings(lambda v, p: v.lower().startswith(p.lower())),
    "endswith": _strings(str.endswith),
    "iendswith": _strings(lambda v, p: v.lower().endswith(p.lower())),
    "inside": _inside,
    "ninside": lambda v, p: not _inside(v, p),
    "timediff_lt": _timediff(lambda age, limit: age < limit),
    "timediff_gt": _timediff(lambda age, limit: age > limit),
    "exists": lambda v, p: v is not MISSING,
    "nexists": lambda v, p: v is MISSING,
    # Evaluated by the matcher (it needs the nested criteria); listed so the name is known.
    "search": lambda v, p: False,
}
ALIASES = {
    "eq": "equals", "neq": "nequals", "lt": "lessthan", "gt": "greaterthan",
    "ieq": "iequals", "in": "inside", "nin": "ninside", "exist": "exists",
    "incontains": "nicontains", "td_lt": "timediff_lt", "td_gt": "timediff_gt",
}
NEEDS_NO_PATTERN = {"exists", "nexists"}
REGEX_OPERATORS = {"regex", "matchregex", "iregex"}
SEARCH_CONDITIONS = ("any", "all", "any2any", "all2any")


def operator_name(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    name = name.lower()
    name = ALIASES.get(name, name)
    return name if name in OPERATORS else None


def evaluate(criterion: dict[str, Any], value: Any, pattern: Any) -> bool:
    """One (non-search) operator on a value; a MISSING value matches only ``nexists``.

    Raises RegexTimeout when the regex budget is spent.
    """
    name = operator_name(criterion["type"])
    if name is None or name == "search":
        return False
    if value is MISSING and name not in NEEDS_NO_PATTERN:
        return False
    return bool(OPERATORS[name](value, pattern))
