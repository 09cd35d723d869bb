"""Jinja ``{{ }}`` and YAQL ``<% %>`` expressions of the Orquesta workflow language.

A string that is exactly one expression keeps the value's own type (a list stays a list);
any other text with expressions renders as a string. A rendered value is never rendered
again, so data that happens to contain ``<%`` or ``{{`` stays data. Jinja runs in Patchbay's
sandbox (app/engine/templates.py); YAQL runs with finite iterator and memory limits.
"""

from __future__ import annotations

import collections.abc  # noqa: F401  yaql 3.x reads collections.abc without importing it
import contextvars
import functools
import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
import yaql
from jinja2 import TemplateSyntaxError, Undefined, UndefinedError
from jinja2.sandbox import SecurityError
from yaql.language import exceptions as yaql_exceptions
from yaql.language import factory as yaql_factory
from yaql.language import specs as yaql_specs
from yaql.language import utils as yaql_utils
from yaql.language import yaqltypes

from app.engine.templates import ENVIRONMENT, MAX_OUTPUT, KvSecret

from .errors import ExpressionError

YAQL_MAX_ITEMS = 10_000          # items one YAQL collection or iterator may yield (YAQL runs ~10k items/s)
YAQL_MEMORY_QUOTA = 10_000_000   # bytes (estimated) one YAQL collection may hold
YAQL_GENERATED = 10_000          # items range()/sequence()/repeat()/cycle() may yield in one evaluation
CACHE_SIZE = 4096                # parsed expressions kept per language
FAILED_STATUSES = frozenset({"failed", "timeout", "abandoned"})
COMPLETED_STATUSES = frozenset({"succeeded", "canceled"}) | FAILED_STATUSES

_SEGMENT = re.compile(r"<%(?P<yaql>(?:(?!%>).)*)%>|\{\{(?P<jinja>(?:(?!\}\}).)*)\}\}", re.DOTALL)
_NO_ITEM = object()


@dataclass
class ExpressionScope:
    """What an expression sees: the context, and the task it is evaluated for."""

    ctx: Mapping[str, Any]
    task: str | None = None              # the current task (succeeded(), failed(), result())
    status: str | None = None            # its status
    result: Any = None                   # its result
    item: Any = _NO_ITEM                 # the current with-item (item())
    statuses: Callable[[str], str | None] = field(default=lambda _name: None)  # task name -> latest status
    kv: Any = None                       # the datastore: kv.system.<name>, kv.lookup(scope, name, decrypt)


def has_expression(value: Any) -> bool:
    """Whether a string holds a Jinja or YAQL expression (or a Jinja block)."""
    return isinstance(value, str) and ("<%" in value or "{{" in value or "{%" in value)


def evaluate(value: Any, variables: ExpressionScope | Mapping[str, Any]) -> Any:
    """``value`` with every expression in it rendered (strings, lists and dicts, recursively)."""
    scope = variables if isinstance(variables, ExpressionScope) else ExpressionScope(ctx=variables)
    token = _SCOPE.set(scope)
    try:
        return _render(value, scope)
    finally:
        _SCOPE.reset(token)


def syntax_errors(value: Any) -> list[str]:
    """Messages for each malformed expression in ``value`` (recursively); [] when all parse."""
    if isinstance(value, dict):
        return [message for item in value.values() for message in syntax_errors(item)]
    if isinstance(value, list):
        return [message for item in value for message in syntax_errors(item)]
    if not has_expression(value):
        return []
    messages = []
    if "{%" in value:
        try:
            _JINJA.parse(value)
        except TemplateSyntaxError as exc:
            messages.append(f"Jinja syntax error in {value!r}: {exc.message}")
        return messages
    for match in _SEGMENT.finditer(value):
        try:
            if match.group("yaql") is not None:
                _parse_yaql(match.group("yaql").strip())
            else:
                _compile_jinja(match.group("jinja").strip())
        except ExpressionError as exc:
            messages.append(str(exc))
    leftover = _SEGMENT.sub("", value)
    if "<%" in leftover or "%>" in leftover or "{{" in leftover:
        messages.append(f"unclosed expression in {value!r}")
    return messages


# -- rendering --------------------------------------------------------------------------------

def _render(value: Any, scope: ExpressionScope) -> Any:
    if isinstance(value, dict):
        return {key: _render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, scope) for item in value]
    if not has_expression(value):
        return value
    if "{%" in value:  # a Jinja block: the whole text is one template
        return _checked_text(_jinja_template(value, scope), value)
    whole = _SEGMENT.fullmatch(value)
    if whole:
        return _one(whole, scope)
    rendered = _SEGMENT.sub(lambda match: _text(_one(match, scope)), value)
    return _checked_text(rendered, value)


def _one(match: re.Match[str], scope: ExpressionScope) -> Any:
    if match.group("yaql") is not None:
        return _yaql(match.group("yaql").strip(), scope)
    return _jinja(match.group("jinja").strip(), scope)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _checked_text(text: str, source: str) -> str:
    if len(text) > MAX_OUTPUT:
        raise ExpressionError(f"{_short(source)} renders to more than {MAX_OUTPUT} characters")
    return text


def _short(text: str) -> str:
    return repr(text if len(text) <= 200 else text[:200] + "...")


def plain(value: Any, source: str = "") -> Any:
    """``value`` as JSON data (tuples become lists, mappings dicts); anything else is refused."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(key): plain(item, source) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)) or isinstance(value, collections.abc.Iterator):
        return [plain(item, source) for item in value]
    raise ExpressionError(f"expression {_short(source)} gives a {type(value).__name__}, which is not JSON data")


# -- YAQL -------------------------------------------------------------------------------------

_YAQL_ENGINE = yaql_factory.YaqlFactory().create(options={
    "yaql.limitIterators": YAQL_MAX_ITEMS,
    "yaql.memoryQuota": YAQL_MEMORY_QUOTA,
    "yaql.convertInputData": True,
    "yaql.convertOutputData": True,
})
# A child of the standard library, so the guarded generators below shadow its own.
_YAQL_ROOT = yaql.create_context().create_child_context()
_BUDGET: contextvars.ContextVar[list[int]] = contextvars.ContextVar("yaql_budget")


def _budgeted(values: Any) -> Any:
    """Yield from ``values``, counting against the evaluation's budget: the iterator limit
    alone does not stop ``range(10**9).sum()``, which never builds a collection."""
    budget = _BUDGET.get()
    for value in values:
        budget[0] -= 1
        if budget[0] < 0:
            raise ExpressionError(f"the expression generates more than {YAQL_GENERATED} items")
        yield value


def _range(start: int, stop: int | None = None, step: int = 1) -> Any:
    if stop is None:
        start, stop = 0, start
    return _budgeted(range(start, stop, step))


def _sequence(start: int = 0, step: int = 1) -> Any:
    return _budgeted(itertools.count(start, step))


def _repeat(value: Any, times: int = -1) -> Any:
    return _budgeted(itertools.repeat(value) if times < 0 else itertools.repeat(value, times))


@yaql_specs.parameter("collection", yaqltypes.Iterable())
@yaql_specs.method
def _cycle(collection: Any) -> Any:
    return _budgeted(itertools.cycle(collection))


for _name, _function in (("range", _range), ("sequence", _sequence), ("repeat", _repeat), ("cycle", _cycle)):
    _YAQL_ROOT.register_function(_function, name=_name)


class _LazyContext(Mapping):
    """``$`` in YAQL: the context, each value converted for YAQL only when it is read, so an
    expression touching one small variable does not pay for a large one."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values
        self._converted: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._converted:
            self._converted[key] = yaql_utils.convert_input_data(self._values[key])
        return self._converted[key]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return id(self)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parse_yaql(source: str) -> Any:
    try:
        return _YAQL_ENGINE(source)
    except (yaql_exceptions.YaqlException, ValueError, TypeError) as exc:
        raise ExpressionError(f"YAQL syntax error in '<% {source} %>': {exc}") from None


def _yaql(source: str, scope: ExpressionScope) -> Any:
    parsed = _parse_yaql(source)
    context = _YAQL_ROOT.create_child_context()
    context["$"] = _LazyContext(scope.ctx)
    budget = _BUDGET.set([YAQL_GENERATED])
    try:
        return plain(parsed.evaluate(context=context), f"<% {source} %>")
    except ExpressionError as exc:
        raise ExpressionError(f"expression '<% {source} %>': {exc}") from None
    except yaql_exceptions.CollectionTooLargeException as exc:
        raise ExpressionError(f"expression '<% {source} %>' is refused: {exc}") from None
    except KeyError as exc:
        raise ExpressionError(f"expression '<% {source} %>' failed: key {exc} is not in the context") from None
    except MemoryError:
        raise ExpressionError(f"expression '<% {source} %>' is refused: it needs too much memory") from None
    except RecursionError:
        raise ExpressionError(f"expression '<% {source} %>' nests too deeply") from None
    except Exception as exc:  # a function's own failure (ZeroDivisionError, NoMatchingMethod, ...)
        raise ExpressionError(f"expression '<% {source} %>' failed: {type(exc).__name__}: {exc}") from None
    finally:
        _BUDGET.reset(budget)


# -- Jinja ------------------------------------------------------------------------------------

def _st2_filters() -> dict[str, Callable[..., Any]]:
    return {
        "to_json_string": lambda value, indent=None, sort_keys=False: json.dumps(value, indent=indent,
                                                                                  sort_keys=sort_keys),
        "from_json_string": json.loads,
        "to_yaml_string": lambda value: yaml.safe_dump(value, default_flow_style=False),
        "from_yaml_string": yaml.safe_load,
        "json_escape": lambda value: json.dumps(value)[1:-1],
        "regex_match": lambda value, pattern: re.match(pattern, value) is not None,
        "regex_search": lambda value, pattern: re.search(pattern, value) is not None,
        "regex_replace": lambda value, pattern, replacement: re.sub(pattern, replacement, value),
    }


# A derived environment: the same sandbox class and guards, its own filter table.
_JINJA = ENVIRONMENT.overlay()
_JINJA.filters = {**ENVIRONMENT.filters, **_st2_filters()}


@functools.lru_cache(maxsize=CACHE_SIZE)
def _compile_jinja(source: str) -> Any:
    try:
        return _JINJA.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"Jinja syntax error in '{{{{ {source} }}}}': {exc.message}") from None


def _jinja(source: str, scope: ExpressionScope) -> Any:
    shown = f"{{{{ {source} }}}}"
    compiled = _compile_jinja(source)

    def run() -> Any:
        result = compiled(**_jinja_names(scope))
        if isinstance(result, (Undefined, KvSecret)):
            str(result)  # raises the UndefinedError (or SecurityError) it stands for
        return result

    return plain(_jinja_guard(shown, run), shown)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _jinja_template_object(source: str) -> Any:
    return _JINJA.from_string(source)


def _jinja_template(source: str, scope: ExpressionScope) -> str:
    def run() -> str:
        return _jinja_template_object(source).render(**_jinja_names(scope))

    return _jinja_guard(source, run)


def _jinja_guard(shown: str, work: Callable[[], Any]) -> Any:
    try:
        return work()
    except ExpressionError as exc:
        raise ExpressionError(f"expression {_short(shown)}: {exc}") from None
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"Jinja syntax error in {_short(shown)}: {exc.message}") from None
    except SecurityError as exc:
        raise ExpressionError(f"expression {_short(shown)} is refused by the sandbox: {exc}") from None
    except UndefinedError as exc:
        raise ExpressionError(f"expression {_short(shown)} failed: {exc.message}") from None
    except RecursionError:
        raise ExpressionError(f"expression {_short(shown)} nests too deeply") from None
    except Exception as exc:
        raise ExpressionError(f"expression {_short(shown)} failed: {type(exc).__name__}: {exc}") from None


class _Datastore:
    """``st2kv`` in Jinja: ``st2kv.system.name`` and ``st2kv('system.name', decrypt=true)``."""

    def __init__(self, kv: Any) -> None:
        self.system = getattr(kv, "system", None)
        self.user = getattr(kv, "user", None)

    def __call__(self, key: str, decrypt: bool = False) -> Any:
        return _st2kv(key, decrypt)


def _jinja_names(scope: ExpressionScope) -> dict[str, Any]:
    names: dict[str, Any] = dict(FUNCTIONS)
    names["ctx"] = _jinja_ctx
    if scope.kv is not None:
        store = _Datastore(scope.kv)
        names["st2kv"] = store
        names["kv"] = store
    return names


def _jinja_ctx(name: Any = None) -> Any:
    if isinstance(name, Undefined):  # ctx(x) written without quotes
        name = name._undefined_name
    return _ctx(name)


# -- the functions ----------------------------------------------------------------------------

_SCOPE: contextvars.ContextVar[ExpressionScope] = contextvars.ContextVar("workflow_scope")


def _scope() -> ExpressionScope:
    return _SCOPE.get()


def _ctx(name: Any = None) -> Any:
    context = _scope().ctx
    if name is None:
        return dict(context)
    if name not in context:
        raise ExpressionError(f"variable {name!r} is not defined in the workflow context")
    return context[name]


def _current() -> ExpressionScope:
    scope = _scope()
    if scope.task is None:
        raise ExpressionError("succeeded(), failed(), completed() and result() need a task (use them in 'next')")
    return scope


def _succeeded() -> bool:
    return _current().status == "succeeded"


def _failed() -> bool:
    return _current().status in FAILED_STATUSES


def _completed() -> bool:
    return _current().status in COMPLETED_STATUSES


def _result() -> Any:
    return _current().result


def _task_status(name: str) -> str:
    status = _scope().statuses(name)
    if status is None:
        return "unset"
    return "failed" if status in FAILED_STATUSES else status


def _item(key: Any = None) -> Any:
    if isinstance(key, Undefined):
        key = key._undefined_name
    current = _scope().item
    if current is _NO_ITEM:
        raise ExpressionError("item() is only available in a task with 'with' items")
    if key is None:
        return current
    if not isinstance(current, Mapping):
        raise ExpressionError("item(name) needs named items ('x in <% ... %>')")
    if key not in current:
        raise ExpressionError(f"the item has no value named {key!r}")
    return current[key]


def _st2kv(key: str, decrypt: bool = False) -> Any:
    kv = _scope().kv
    if kv is None:
        raise ExpressionError("st2kv(): no datastore is available here")
    if not isinstance(key, str) or not key:
        raise ExpressionError("st2kv() needs a key name such as 'system.name'")
    scope_name, _, name = key.partition(".")
    if scope_name not in ("system", "user") or not name:
        scope_name, name = "user", key  # StackStorm: a key without a scope is the user's
    return kv.lookup(scope_name, name, bool(decrypt))


def _json(text: Any) -> Any:
    if isinstance(text, Mapping):
        return dict(text)
    if not isinstance(text, str):
        raise ExpressionError("json() needs a string")
    return json.loads(text)


def _zip(*lists: Any, pad: Any = None) -> list[Any]:
    lists = tuple([] if items is None else list(items) for items in lists)
    if len(lists) == 1:
        return lists[0]
    longest = max((len(items) for items in lists), default=0)
    return [[items[i] if i < len(items) else pad for items in lists] for i in range(longest)]


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ctx": _ctx,
    "succeeded": _succeeded,
    "failed": _failed,
    "completed": _completed,
    "result": _result,
    "task_status": _task_status,
    "item": _item,
    "st2kv": _st2kv,
    "json": _json,
    "zip": _zip,
    "from_json_string": json.loads,
    "to_json_string": lambda value: json.dumps(value),
    "from_yaml_string": yaml.safe_load,
    "to_yaml_string": lambda value: yaml.safe_dump(value, default_flow_style=False),
}


def _register_yaql() -> None:
    for name, function in FUNCTIONS.items():
        def call(*args: Any, _function: Callable[..., Any] = function, **kwargs: Any) -> Any:
            if _function is _ctx and not args:
                return _LazyContext(_scope().ctx)  # ctx().name reads one variable, converting only it
            args = tuple(plain(arg) if isinstance(arg, (Mapping, tuple)) else arg for arg in args)
            return yaql_utils.convert_input_data(_function(*args, **kwargs))

        _YAQL_ROOT.register_function(call, name=name)


_register_yaql()
