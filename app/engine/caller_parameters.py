"""What a caller may set: the check for values given to an action by anyone but its pack.

Callers are everyone who supplies an execution's values: the execute API, a rerun, a rule's
``action.parameters`` (checked when the rule is saved or registered, and again when it fires).
On top of the action's parameter schema they meet three rules:

- a runner parameter (``env``, ``cwd``, ``cmd``, ``url``, ...) may be set only where the
  action declares it in its own ``parameters``; ``timeout`` is always settable;
- ``timeout`` never exceeds the action's cap (``timeout_cap``);
- ``env`` holds valid environment names and values, and no name that changes how a shell
  or an interpreter starts (those are for the action's metadata alone).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from app.engine.parameters import value_errors
from app.engine.runner_types import (
    MAX_TIMEOUT,
    RUNNER_PARAMETERS,
    effective_parameters,
    startup_env_name,
)
from app.engine.template_syntax import is_template

# Settable by every caller, as in StackStorm; bounded by timeout_cap instead.
ALWAYS_SETTABLE = frozenset({"timeout"})


class ActionLike(Protocol):
    """What the check reads from an action (an Action row fits)."""

    ref: str
    runner_type: str
    parameters: Any
    timeout: int | None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _own(action: ActionLike) -> dict[str, Any]:
    return action.parameters if isinstance(action.parameters, dict) else {}


def timeout_cap(action: ActionLike, default_timeout: int) -> tuple[float, str]:
    """The largest ``timeout`` a caller may give, and where that limit comes from.

    The action's own ``timeout`` parameter's ``maximum``, else the action's ``timeout``, else
    the default of its own ``timeout`` parameter, else ``default_timeout`` (what it would get).
    """
    own = _own(action).get("timeout")
    own = own if isinstance(own, dict) else {}
    if _number(own.get("maximum")) and own["maximum"] > 0:
        return min(float(own["maximum"]), float(MAX_TIMEOUT)), "the maximum of its timeout parameter"
    if action.timeout:
        return float(action.timeout), "its own timeout"
    if _number(own.get("default")) and own["default"] > 0:
        return min(float(own["default"]), float(MAX_TIMEOUT)), "the default of its timeout parameter"
    return float(default_timeout), "the default execution timeout"


def exposed(action: ActionLike) -> set[str]:
    """The runner parameters a caller may set on ``action`` (immutability is checked apart)."""
    runner = RUNNER_PARAMETERS.get(action.runner_type, {})
    return {name for name in runner if name in _own(action) or name in ALWAYS_SETTABLE}


def env_errors(env: Any, *, allow_templates: bool = False) -> list[str]:
    """Why an ``env`` a caller gives is refused (empty when it is acceptable)."""
    if not isinstance(env, dict):
        return []  # a template (rendered later) or a type error reported by the schema check
    problems: list[str] = []
    for name, value in env.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            problems.append(f"{name!r} is not an environment variable name (empty, or containing '=' or NUL).")
        elif startup_env_name(name):
            problems.append(f"{name!r} changes how a shell or an interpreter starts; only the action's "
                            "metadata may set it.")
        elif isinstance(value, str):
            if "\0" in value:
                problems.append(f"The value of {name!r} contains a NUL character.")
        elif not (_number(value) or isinstance(value, bool)) and not (allow_templates and is_template(value)):
            problems.append(f"The value of {name!r} must be text, a number or true/false.")
    return problems


def caller_errors(action: ActionLike, values: Any, *, default_timeout: int,
                  allow_templates: bool = False) -> dict[str, list[str]]:
    """Problems with ``values`` given by a caller or a rule, keyed by parameter name.

    The action's schema (unknown, missing, immutable, wrong type), then what callers may not
    set. With ``allow_templates`` (a rule's stored values) a template stands for any value;
    the values it renders to are checked again when the execution is created.
    """
    schema = effective_parameters(action.runner_type, _own(action))
    errors = value_errors(schema, values, allow_templates=allow_templates)
    if not isinstance(values, dict):
        return errors
    runner = RUNNER_PARAMETERS.get(action.runner_type, {})
    allowed = exposed(action)
    for name in values:
        if name in runner and name not in allowed:
            errors[name] = [f"{name!r} is a parameter of the {action.runner_type} runner that action "
                            f"{action.ref} does not expose."]
    timeout = values.get("timeout")
    immutable = isinstance(_own(action).get("timeout"), dict) and _own(action)["timeout"].get("immutable")
    if "timeout" in runner and not immutable and _number(timeout):
        cap, source = timeout_cap(action, default_timeout)
        if timeout > cap:  # replaces the schema's "greater than the maximum": this says whose limit
            errors["timeout"] = [f"'timeout' may be at most {cap:g} seconds for action {action.ref} ({source})."]
    if "env" in runner and "env" not in errors and "env" in values:
        problems = env_errors(values["env"], allow_templates=allow_templates)
        if problems:
            errors["env"] = problems
    return errors


def given_timeout(values: dict[str, Any]) -> int | None:
    """A caller's ``timeout`` in whole seconds for the execution row (None when not a number)."""
    timeout = values.get("timeout")
    if _number(timeout) and timeout > 0:
        return min(MAX_TIMEOUT, max(1, math.ceil(timeout)))
    return None
