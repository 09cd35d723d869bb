"""JSON Schema's regular expressions (``pattern``, ``patternProperties``) on a time budget.

Python's ``re`` cannot be interrupted, so a pattern like ``^(a|a)*$`` against a short string
would hold a web thread for ever. Patterns run on the ``regex`` module with a timeout that
all the patterns of one validation share; running out is a validation error. ``regex``
expands fixed repetitions when it compiles (``(?:a{65535}){65535}`` exhausts memory), so a
pattern is measured before it is compiled.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]
from typing import Any

import regex
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError

# Matching time one validation (one parameter, one config, one payload) may spend on patterns.
PATTERN_BUDGET_SECONDS = 0.25
# Characters a pattern stands for once its fixed repetitions are written out.
MAX_EXPANDED_SIZE = 10_000
_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT,
            getattr(sre_constants, "POSSESSIVE_REPEAT", sre_constants.MAX_REPEAT)}
_deadline: ContextVar[float | None] = ContextVar("pattern_deadline", default=None)


class PatternTooLarge(ValueError):
    """A pattern whose compiled form would be too large to build."""


def _expanded_size(items: Any) -> int:
    total = 0
    for op, argument in items:
        if op in _REPEATS:
            low, _high, body = argument
            total += max(low, 1) * _expanded_size(body)
        else:
            total += 1 + sum(_expanded_size(part) for part in _subpatterns(argument))
        if total > MAX_EXPANDED_SIZE:
            break
    return total


def _subpatterns(argument: Any) -> Iterator[Any]:
    if isinstance(argument, sre_parser.SubPattern):
        yield argument
    elif isinstance(argument, (tuple, list)):
        for part in argument:
            yield from _subpatterns(part)


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> regex.Pattern:
    """``pattern`` compiled by ``regex``; ``re.error`` or PatternTooLarge when unusable."""
    try:
        size = _expanded_size(sre_parser.parse(pattern))
    except RecursionError:
        raise PatternTooLarge("The pattern is nested too deeply.") from None
    if size > MAX_EXPANDED_SIZE:
        raise PatternTooLarge(f"The pattern repeats too much (over {MAX_EXPANDED_SIZE} characters once expanded).")
    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise re.error(str(exc)) from None


def is_usable_pattern(value: object) -> bool:
    """The ``regex`` format of JSON Schema, as Patchbay evaluates patterns."""
    if isinstance(value, str):
        compile_pattern(value)
    return True


# Checks a schema's own patterns (``format: regex`` in the meta-schema) the way they will run.
SCHEMA_FORMATS = FormatChecker()
SCHEMA_FORMATS.checkers = {**Draft7Validator.FORMAT_CHECKER.checkers,
                           "regex": (is_usable_pattern, (re.error, PatternTooLarge))}


@contextmanager
def pattern_budget() -> Iterator[None]:
    """Share one PATTERN_BUDGET_SECONDS among the pattern matches made inside."""
    if _deadline.get() is not None:
        yield
        return
    token = _deadline.set(time.monotonic() + PATTERN_BUDGET_SECONDS)
    try:
        yield
    finally:
        _deadline.reset(token)


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` is found in ``text``; TimeoutError once the budget is spent."""
    deadline = _deadline.get()
    remaining = PATTERN_BUDGET_SECONDS if deadline is None else deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    return compile_pattern(pattern).search(text, timeout=remaining) is not None


def _slow(pattern: str) -> ValidationError:
    return ValidationError(f"Could not be checked against the pattern {pattern!r} in time "
                           f"({PATTERN_BUDGET_SECONDS} s): the pattern backtracks too much; simplify it.")


def _unusable(pattern: str, exc: Exception) -> ValidationError:
    return ValidationError(f"The pattern {pattern!r} cannot be used: {exc}")


def _short(value: str) -> str:
    return repr(value) if len(value) <= 80 else repr(value[:77] + "...")


def pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    try:
        if not search(pattern, instance):
            yield ValidationError(f"{_short(instance)} does not match {pattern!r}")
    except TimeoutError:
        yield _slow(pattern)
    except (re.error, PatternTooLarge) as exc:
        yield _unusable(pattern, exc)


def pattern_properties_keyword(validator: Any, patterns: dict[str, Any], instance: Any,
                               schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            try:
                found = search(pattern, key)
            except TimeoutError:
                yield _slow(pattern)
                return
            except (re.error, PatternTooLarge) as exc:
                yield _unusable(pattern, exc)
                return
            if found:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def additional_properties_keyword(validator: Any, additional: Any, instance: Any,
                                  schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = []
    for key in instance:
        if key in declared:
            continue
        try:
            if any(search(pattern, key) for pattern in patterns):
                continue
        except TimeoutError:
            yield _slow(patterns[0] if len(patterns) == 1 else "|".join(patterns))
            return
        except (re.error, PatternTooLarge) as exc:
            yield _unusable("|".join(patterns), exc)
            return
        extras.append(key)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        listed = ", ".join(repr(each) for each in sorted(extras, key=str))
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            yield ValidationError(f"{listed} {verb} not match any of the regexes: "
                                  f"{', '.join(repr(p) for p in sorted(patterns))}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({listed} {verb} unexpected)")


TIMED_KEYWORDS = {
    "pattern": pattern_keyword,
    "patternProperties": pattern_properties_keyword,
    "additionalProperties": additional_properties_keyword,
}
