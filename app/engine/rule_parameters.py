"""A rule's action parameters as the worker will render them, checked before anything runs.

The enforcer renders them once to refuse a rule whose templates fail (recorded on the
enforcement, nothing run) and the rule tester to show what the action would get; the
execution stores the templates and the worker renders them again with the secrets.
"""

from __future__ import annotations

from typing import Any

from app.engine.parameters import secret_names, value_errors
from app.engine.templates import render_parameters, shell_parameters


def render_context(payload: Any, rule: dict[str, Any], event: dict[str, Any], config: dict[str, Any],
                   execution: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a rule's templates see: ``trigger`` (the payload), ``rule``, ``event``, ``config``."""
    return {"trigger": payload, "rule": rule, "event": event, "config": config, "execution": execution or {}}


def render_rule_parameters(schema: dict[str, Any], runner_type: str, values: dict[str, Any],
                           context: dict[str, Any]) -> dict[str, Any]:
    """The parameters rendered and checked; TemplateError or ValueError naming the parameter."""
    rendered = render_parameters(schema, values, context, shell_quote=shell_parameters(runner_type),
                                 literal=secret_names(schema))
    problems = value_errors({name: {k: v for k, v in d.items() if k != "immutable"} for name, d in schema.items()},
                            rendered)
    if problems:
        name = sorted(problems)[0]
        raise ValueError(f"Parameter {name!r} after rendering: {problems[name][0]}")
    return rendered
