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
from datetime import UTC, datetime
from typing import Any

import dateutil.parser

from app.engine.schema_patterns import compile_pattern

MISSING = object()
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


def _parse_time(value: Any) -> datetime:
    """StackStorm's reading of a time: any text dateutil understands, naive meaning UTC."""
    moment = dateutil.parser.parse(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _timediff(op: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    def timediff(value: Any, pattern: Any) -> bool:
        age = (datetime.now(UTC) - _parse_time(value)).total_seconds()
        return op(age, float(pattern))

    return timediff


# Each operator is StackStorm's: plain Python on the value as it is (a missing path gives
# None). What raises on a value (a str compared with an int, .lower() of a number) does not
# match; evaluate() turns the exception into False.
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": lambda v, p: v == p,
    "nequals": lambda v, p: v != p,
    "iequals": lambda v, p: v.lower() == p.lower(),
    "lessthan": lambda v, p: v < p,
    "greaterthan": lambda v, p: v > p,
    "matchwildcard": fnmatch.fnmatchcase,
    # As in StackStorm: regex/iregex find the pattern anywhere (anchor it with ^...$ to match
    # the whole value); matchregex matches at the start, with '.' matching newlines.
    "regex": _regex("", anchored=False),
    "iregex": _regex("(?i)", anchored=False),
    "matchregex": _regex("(?s)", anchored=True),
    "contains": lambda v, p: p in v,
    "ncontains": lambda v, p: p not in v,
    "icontains": lambda v, p: p.lower() in v.lower(),
    "incontains": lambda v, p: p.lower() not in v.lower(),
    "startswith": lambda v, p: v.startswith(p),
    "istartswith": lambda v, p: v.lower().startswith(p.lower()),
    "endswith": lambda v, p: v.endswith(p),
    "iendswith": lambda v, p: v.lower().endswith(p.lower()),
    "inside": lambda v, p: v in p,
    "ninside": lambda v, p: v not in p,
    "timediff_lt": _timediff(lambda age, limit: age < limit),
    "timediff_gt": _timediff(lambda age, limit: age > limit),
    "exists": lambda v, p: v is not None,
    "nexists": lambda v, p: v is None,
    # Evaluated by the matcher (it needs the nested criteria); listed so the name is known.
    "search": lambda v, p: False,
}
ALIASES = {
    "eq": "equals", "neq": "nequals", "lt": "lessthan", "gt": "greaterthan",
    "ieq": "iequals", "in": "inside", "nin": "ninside",
    "td_lt": "timediff_lt", "td_gt": "timediff_gt",
    # Patchbay's own spellings, accepted for rules written before the StackStorm names.
    "exist": "exists", "nicontains": "incontains",
}
# Operators that hold for a null pattern; every other one is false when the pattern is null.
NULL_PATTERN_OPERATORS = {"nequals", "exists", "nexists"}
NEEDS_NO_PATTERN = {"exists", "nexists"}
REGEX_OPERATORS = {"regex", "matchregex", "iregex"}
SEARCH_CONDITIONS = ("any", "all", "any2any", "all2any")


def operator_name(name: Any) -> str | None:
    """The canonical name of an operator or alias (any case), or None if unknown."""
    if not isinstance(name, str):
        return None
    name = name.lower()
    name = ALIASES.get(name, name)
    return name if name in OPERATORS else None


def evaluate(criterion: dict[str, Any], value: Any, pattern: Any) -> bool:
    """One (non-search) operator on a value, as StackStorm evaluates it.

    A MISSING value is seen as None (so ``nequals`` and ``ninside`` may hold for it); a null
    pattern matches only ``nequals``, ``exists`` and ``nexists``; an operator that raises on
    its operands does not match. Raises RegexTimeout when the regex budget is spent.
    """
    name = operator_name(criterion["type"])
    if name is None or name == "search":
        return False
    if pattern is None and name not in NULL_PATTERN_OPERATORS:
        return False
    try:
        return bool(OPERATORS[name](None if value is MISSING else value, pattern))
    except RegexTimeout:
        raise
    except Exception:  # a payload is anyone's input: whatever it makes an operator raise, no match
        return False
