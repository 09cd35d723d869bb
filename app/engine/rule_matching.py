"""The pure matcher: does a rule match an event? Every check is explained, for the rule tester.

``match_criteria`` evaluates a criteria document (app/engine/criteria_checks.py describes its
shape) against an event payload and returns the verdict with one ``Check`` per criterion:
its path, the value found, the operator, the pattern and whether it matched. A criterion's
pattern holding ``{{ }}`` is rendered in the sandbox first, as StackStorm does: over
``trigger`` (over ``item`` inside a ``search``), a lone ``{{ expr }}`` keeping its value's type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.engine.criteria import MISSING, RegexTimeout, evaluate, operator_name, regex_budget
from app.engine.payload_paths import lookup
from app.engine.templates import TemplateError, is_template, render_parameters


@dataclass
class Check:
    """One criterion (or group) and its verdict."""

    path: str
    operator: str
    pattern: Any
    matched: bool
    value: Any = MISSING
    reason: str | None = None
    condition: str | None = None
    checks: list[Check] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"path": self.path, "operator": self.operator, "pattern": self.pattern,
                                 "found": self.value is not MISSING,
                                 "value": None if self.value is MISSING else self.value, "matched": self.matched}
        if self.condition:
            shown["condition"] = self.condition
        if self.reason:
            shown["reason"] = self.reason
        if self.checks:
            shown["checks"] = [check.as_dict() for check in self.checks]
        return shown


@dataclass
class Verdict:
    matched: bool
    checks: list[Check]


def match_criteria(criteria: dict[str, Any] | None, payload: Any) -> Verdict:
    """Whether ``payload`` meets every criterion (an empty criteria document matches everything).

    All checks run (not only up to the first failure) so the tester can show each one; the
    regex operators of one evaluation share one time budget. As in StackStorm, criteria never
    match an empty payload (``{}``, ``null``...), whatever they say.
    """
    with regex_budget():
        checks = _evaluate_all(criteria or {}, {"trigger": payload}, "trigger")
    if criteria and not payload:
        checks.insert(0, Check("trigger", "payload", None, False, payload,
                               reason="the payload is empty, and criteria never match an empty payload"))
    return Verdict(all(check.matched for check in checks), checks)


def _evaluate_all(criteria: dict[str, Any], scope: dict[str, Any], root: str) -> list[Check]:
    return [_evaluate(key, criterion, scope, root) for key, criterion in criteria.items()]


def _evaluate(key: str, criterion: Any, scope: dict[str, Any], root: str) -> Check:
    if key in ("any", "all"):
        members = [_evaluate_all(member, scope, root) for member in criterion]
        verdicts = [all(check.matched for check in member) for member in members]
        matched = any(verdicts) if key == "any" else all(verdicts)
        return Check(key, key, None, matched, checks=[check for member in members for check in member])
    name = operator_name(criterion.get("type")) or str(criterion.get("type"))
    value = lookup(scope[root], key, root)
    pattern = criterion.get("pattern")
    check = Check(key, name, pattern, False, value)
    if is_template(pattern):
        try:
            pattern = render_parameters({}, {"pattern": pattern}, scope)["pattern"]
        except TemplateError as exc:
            check.reason = f"the pattern could not be rendered: {exc.message}"
            return check
        check.pattern = pattern
    try:
        if name == "search":
            check.condition = criterion.get("condition")
            _search(check, value, pattern, check.condition)
        else:
            check.matched = evaluate(criterion, value, pattern)
    except RegexTimeout:
        check.reason = "the regular expressions ran out of time (the pattern backtracks too much); not matched"
    if not check.matched and check.reason is None and value is MISSING:
        check.reason = "no value at this path (seen as null)"
    return check


def _search(check: Check, value: Any, pattern: Any, condition: str | None) -> None:
    """StackStorm's ``search``: items of a list against criteria over ``item.<path>``.

    any: some item meets every criterion; all: every item meets every criterion;
    any2any: some item meets some criterion; all2any: every item meets some criterion.
    As in StackStorm, ``all`` and ``all2any`` hold for an empty list, an object is searched
    as a list of one item and a text character by character.
    """
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, (list, str)) or not isinstance(pattern, dict):
        check.reason = "search needs a list" if value is not MISSING else None
        return
    per_item = [_evaluate_all(pattern, {"item": item}, "item") for item in value]
    each = (all if condition in ("any", "all") else any)
    verdicts = [each(c.matched for c in checks) for checks in per_item]
    check.matched = (any if condition in ("any", "any2any") else all)(verdicts)
    if per_item:
        first_failing = next((i for i, ok in enumerate(verdicts) if not ok), 0)
        check.checks = per_item[first_failing]
