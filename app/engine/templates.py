"""Sandboxed Jinja rendering of action parameters.

``render_parameters`` fills in defaults, then renders every string holding ``{{ }}`` or
``{% %}``: parameters may reference each other (StackStorm's ``cmd: "echo {{ message }}"``),
so they are rendered in dependency order and a cycle is an error. Each value's source is
rendered exactly once; a rendered value is never rendered again, so data that happens to
contain ``{{`` (a webhook payload) stays data.

Parameters named in ``shell_quote`` (the ``cmd`` of local-shell-cmd) are rendered for a
shell: every substituted value is quoted for where it lands, or refused where no quoting
makes it data (app/engine/shell_quoting.py); a parameter declared ``allow_options: true``
may give a value starting with '-' where the command reads options.
"""

from __future__ import annotations

import contextvars
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jinja2 import (
    StrictUndefined,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    meta,
    pass_eval_context,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from app.engine.parameters import with_defaults
from app.engine.shell_quoting import ShellQuotingError, fill_placeholders
from app.engine.template_syntax import is_template

MAX_OUTPUT = 1024 * 1024   # characters a rendered string may have
MAX_SEQUENCE = 1024 * 1024  # items/characters "x" * n may produce
# The runner parameters that a shell runs: their templates are rendered shell-quoted.
SHELL_PARAMETERS: dict[str, frozenset[str]] = {"local-shell-cmd": frozenset({"cmd"})}


class TemplateError(ValueError):
    """A parameter's template cannot be rendered; ``errors`` is ``{parameter: [message]}``."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"Parameter {parameter!r}: {message}")
        self.parameter = parameter
        self.message = message
        self.errors = {parameter: [message]}


class _Recorder:
    """Collects the values substituted into one shell-bound template."""

    def __init__(self, variables: Mapping[str, Any]) -> None:
        # Which names hold the very object a {{ }} outputs: that names the parameter in
        # messages, and lets its allow_options apply.
        self.sources: dict[int, list[str]] = {}
        for name, value in variables.items():
            self.sources.setdefault(id(value), []).append(name)
        self.keep = list(variables.values())  # ids stay unique while the map is used
        nonce = "".join(secrets.choice("0123456789") for _ in range(12))
        self.prefix = f"\x00{nonce}"
        self.pattern = re.compile(re.escape(self.prefix) + r"(\d{6})\x00")
        self.values: list[str] = []
        self.names: list[tuple[str, ...]] = []

    def placeholder(self, value: Any) -> str:
        # A macro or {% set %} block may hand back text holding earlier placeholders:
        # the whole of it becomes one value.
        text = self.pattern.sub(lambda m: self.values[int(m.group(1))], str(value))
        self.names.append(tuple(self.sources.get(id(value), ())) if text == str(value) else ())
        self.values.append(text)
        return f"{self.prefix}{len(self.values) - 1:06d}\x00"


_RECORDER: contextvars.ContextVar[_Recorder | None] = contextvars.ContextVar("shell_recorder", default=None)


@pass_eval_context
def _finalize(eval_ctx: Any, value: Any) -> Any:
    # pass_eval_context keeps Jinja from folding constants at compile time: every {{ }}
    # output comes through here while the recorder is set.
    recorder = _RECORDER.get()
    return value if recorder is None else recorder.placeholder(value)


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, plus a cap on ``"x" * n`` and ``a ** b`` (cheap memory exhaustion)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and len(seq) * count > MAX_SEQUENCE:
                    raise SecurityError("the result of '*' would be too large")
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 512 and abs(left) > 1:
            raise SecurityError("the result of '**' would be too large")
        return super().call_binop(context, operator, left, right)


class KvSecret:
    """A secret datastore value met in a template (``{{ st2kv.system.token }}``): it renders
    only through ``| decrypt_kv``, which calls ``reveal`` — the lookup that checks the
    execution's identity may read it (app/services/key_templates.py). Shown as it is, it
    refuses, rather than render a ciphertext (StackStorm) or a mask that would run as text."""

    def __init__(self, name: str, reveal: Callable[[], str]) -> None:
        self.name = name
        self._reveal = reveal

    def decrypted(self) -> str:
        return self._reveal()

    def __str__(self) -> str:
        raise SecurityError(f"datastore key {self.name!r} is secret: render it with '| decrypt_kv'")


def _decrypt_kv(value: Any) -> Any:
    """StackStorm's ``decrypt_kv``: a secret key's value; any other value as it is."""
    return value.decrypted() if isinstance(value, KvSecret) else value


ENVIRONMENT = _Environment(undefined=StrictUndefined, finalize=_finalize, autoescape=False)
ENVIRONMENT.filters["decrypt_kv"] = _decrypt_kv
SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.DOTALL)


def shell_parameters(runner_type: str) -> frozenset[str]:
    """Which parameters of this runner type are run by a shell (pass as ``shell_quote``)."""
    return SHELL_PARAMETERS.get(runner_type, frozenset())


def render_parameters(schema: Mapping[str, Any], values: Mapping[str, Any], context: Mapping[str, Any],
                      *, shell_quote: Iterable[str] = (), literal: Iterable[str] = ()) -> dict[str, Any]:
    """``values`` with defaults applied and every template rendered.

    ``context`` holds ``trigger``, ``kv``, ``config``, ``execution``...; parameters are
    visible by name and win over context names. ``literal`` names values that were
    rendered already (kept as they are, visible to the others). Raises TemplateError.
    """
    merged = with_defaults(dict(schema), dict(values))
    literal = set(literal)
    quoted = set(shell_quote)
    allow_options = {name for name, d in schema.items() if isinstance(d, dict) and d.get("allow_options") is True}
    depends = {name: set() if name in literal else _references(name, value) & set(merged)
               for name, value in merged.items()}
    scope = _base_scope(context)
    rendered: dict[str, Any] = {}
    for name in _dependency_order(depends):
        if name in literal:
            rendered[name] = merged[name]
            continue
        definition = schema.get(name) if isinstance(schema.get(name), dict) else {}
        variables = {**scope, **rendered}
        rendered[name] = _render_value(name, merged[name], variables, name in quoted, definition.get("type"),
                                       allow_options)
    return {name: rendered[name] for name in merged}


def render_string(name: str, source: str, variables: Mapping[str, Any], *, shell: bool = False,
                  allow_options: Iterable[str] = ()) -> str:
    """One template to text; ``name`` is what errors call it. Raises TemplateError.

    With ``shell`` every substituted value is quoted for the shell; values of the names in
    ``allow_options`` may start with '-' where the command reads an option.
    """
    recorder = _Recorder(variables) if shell else None
    token = _RECORDER.set(recorder)
    try:
        text = _guard(name, lambda: ENVIRONMENT.from_string(source).render(variables))
    finally:
        _RECORDER.reset(token)
    if recorder is not None:
        try:
            text = fill_placeholders(text, recorder.pattern, recorder.values, recorder.names, set(allow_options))
        except ShellQuotingError as exc:
            raise TemplateError(name, f"unsafe in a shell command: {exc}") from None
        if "\x00" in text:
            raise TemplateError(name, "a filter block changed a substituted value; it cannot be quoted for the shell")
    if len(text) > MAX_OUTPUT:
        raise TemplateError(name, f"the rendered value is longer than {MAX_OUTPUT} characters")
    return text


def _base_scope(context: Mapping[str, Any]) -> dict[str, Any]:
    scope = dict(context)
    # StackStorm's names, so its packs' templates work unchanged.
    if "kv" in scope:
        scope.setdefault("st2kv", scope["kv"])
    if "config" in scope:
        scope.setdefault("config_context", scope["config"])
    return scope


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _references(name: str, value: Any) -> set[str]:
    names: set[str] = set()
    for source in _strings(value):
        if is_template(source):
            names |= meta.find_undeclared_variables(_guard(name, lambda s=source: ENVIRONMENT.parse(s)))
    return names


def _dependency_order(depends: dict[str, set[str]]) -> list[str]:
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name):] + [name]
            raise TemplateError(name, f"the templates refer to each other in a cycle: {' -> '.join(cycle)}")
        state[name] = "visiting"
        for dependency in sorted(depends[name]):
            visit(dependency, path + [name])
        state[name] = "done"
        order.append(name)

    for name in depends:
        visit(name, [])
    return order


def _render_value(name: str, value: Any, variables: Mapping[str, Any], shell: bool, kind: Any,
                  allow_options: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _render_value(name, v, variables, shell, None, allow_options) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(name, v, variables, shell, None, allow_options) for v in value]
    if not is_template(value):
        return value
    single = SINGLE_EXPRESSION.match(value)
    if single and not shell and kind != "string":
        return _native(name, single.group("expr"), variables)
    text = render_string(name, value, variables, shell=shell, allow_options=allow_options)
    return _cast(text, kind)


def _native(name: str, expression: str, variables: Mapping[str, Any]) -> Any:
    """``"{{ expr }}"`` alone keeps the value's type (a list stays a list, 3 stays 3)."""
    def evaluate() -> Any:
        result = ENVIRONMENT.compile_expression(expression, undefined_to_none=False)(**variables)
        if isinstance(result, (Undefined, KvSecret)):
            str(result)  # raises the UndefinedError (or SecurityError) it stands for
        return result

    result = _guard(name, evaluate)
    try:
        return json.loads(json.dumps(result))
    except (TypeError, ValueError):
        raise TemplateError(name, f"the template gives a {type(result).__name__}, which is not JSON data") from None


def _cast(text: str, kind: Any) -> Any:
    """A rendered string turned into the declared type when it reads as one."""
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
        if kind in ("object", "array"):
            return json.loads(text)
    except ValueError:
        return text
    if kind == "boolean" and text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    return text


def _guard(name: str, work: Any) -> Any:
    try:
        return work()
    except TemplateError:
        raise
    except TemplateSyntaxError as exc:
        raise TemplateError(name, f"template syntax error on line {exc.lineno}: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateError(name, f"refused by the template sandbox: {exc}") from None
    except UndefinedError as exc:
        raise TemplateError(name, f"undefined in the template: {exc.message}") from None
    except RecursionError:
        raise TemplateError(name, "the template nests too deeply") from None
    except Exception as exc:  # a filter's or an operator's own error (ZeroDivisionError, ...)
        raise TemplateError(name, f"the template failed: {type(exc).__name__}: {exc}") from None
