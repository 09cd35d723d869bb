"""Parse and validate an Orquesta (version 1.0) workflow definition.

``load_workflow`` turns YAML text into a ``WorkflowSpec`` or raises a ``WorkflowError`` that
names the file, the task and the field of every problem found. Expressions are checked for
syntax here; they are evaluated only when the workflow runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import WorkflowError
from .expressions import has_expression, syntax_errors

MAX_DOCUMENT = 1024 * 1024   # bytes of YAML text
MAX_DEPTH = 64               # nesting of mappings and lists
MAX_NODES = 200_000          # values in the document (YAML aliases count each time they are used)
ENGINE_COMMANDS = frozenset({"fail", "noop", "continue", "retry"})
TOP_LEVEL_KEYS = ("version", "description", "input", "vars", "output", "tasks")
TASK_KEYS = ("action", "input", "next", "join", "with", "retry", "delay")
TRANSITION_KEYS = ("when", "publish", "do")
RETRY_KEYS = ("when", "count", "delay")
ITEMS_KEYS = ("items", "concurrency")
DEFAULT_RETRY_WHEN = "<% failed() %>"

_NAME = re.compile(r"^[A-Za-z_][\w-]*$")
_ACTION_REF = re.compile(r"^[\w-]+\.[\w.-]+$")
_EXPRESSION = r"<%(?:(?!%>).)*%>|\{\{(?:(?!\}\}).)*\}\}"
_INLINE_VALUE = (rf'"(?:{_EXPRESSION}|[^"])*"|\'(?:{_EXPRESSION}|[^\'])*\''
                 rf"|\[[^\]]*\]|\{{(?!\{{)[^}}]*\}}|(?:{_EXPRESSION}|[^\s,;\"'])+")
_INLINE_PARAM = re.compile(rf"(?P<key>\w+)=(?P<value>{_INLINE_VALUE})", re.DOTALL)
_INLINE_SEPARATOR = re.compile(r"[\s,;]*")
_WITH_ITEMS = re.compile(r"^\s*(?:(?P<names>[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s+in\s+)?(?P<items>.+?)\s*$",
                         re.DOTALL)


@dataclass(frozen=True)
class Transition:
    when: str | None                       # None: always taken
    publish: tuple[tuple[str, Any], ...]   # in order; later ones see earlier ones
    do: tuple[str, ...]                    # task names and engine commands


@dataclass(frozen=True)
class Items:
    items: Any                             # one expression giving the list, or a literal list
    names: tuple[str, ...]                 # "x, y in ..." -> ("x", "y"); () for the bare form
    concurrency: Any = None                # int, expression or None (no cap)


@dataclass(frozen=True)
class Retry:
    when: str
    count: Any
    delay: Any = None


@dataclass(frozen=True)
class TaskSpec:
    name: str
    action: str | None                     # "pack.name" or one expression giving it; None: no action
    input: dict[str, Any]                  # inline parameters merged with `input`
    next: tuple[Transition, ...] = ()
    join: str | int | None = None          # "all", a count, or None
    items: Items | None = None
    retry: Retry | None = None
    delay: Any = None


@dataclass(frozen=True)
class WorkflowSpec:
    file: str
    description: str | None
    input: tuple[tuple[str, Any, bool], ...]   # (name, default, required)
    vars: tuple[tuple[str, Any], ...]
    output: tuple[tuple[str, Any], ...]
    tasks: dict[str, TaskSpec]
    start: tuple[str, ...] = ()                # tasks nothing transitions to
    inbound: dict[str, tuple[str, ...]] = field(default_factory=dict)  # task -> tasks with a transition to it


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.found: list[tuple[str, str | None, str | None]] = []

    def add(self, message: str, task: str | None = None, field_name: str | None = None) -> None:
        self.found.append((message, task, field_name))

    def raise_any(self) -> None:
        if not self.found:
            return
        message, task, field_name = self.found[0]
        error = WorkflowError(message, file=self.file, task=task, field=field_name)
        errors: dict[str, list[str]] = {}
        for message, task, field_name in self.found:
            key = ".".join(part for part in (task, field_name) if part) or "workflow"
            errors.setdefault(key, []).append(message)
        error.errors = errors
        raise error


def load_workflow(text: str, file_name: str) -> WorkflowSpec:
    """Parse and validate a workflow definition; raises WorkflowError naming file/task/field."""
    problems = _Problems(file_name)
    document = _parse_yaml(text, file_name)
    if not isinstance(document, dict):
        raise WorkflowError("the workflow definition must be a YAML mapping", file=file_name)
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            problems.add(f"unknown key {key!r} (allowed: {', '.join(TOP_LEVEL_KEYS)})", field_name=str(key))
    version = document.get("version")
    if "version" not in document:
        problems.add("'version' is required (1.0)", field_name="version")
    elif isinstance(version, bool) or str(version).strip() not in ("1.0", "1"):
        problems.add(f"unsupported version {version!r}: only 1.0 is supported", field_name="version")
    description = document.get("description")
    if description is not None and not isinstance(description, str):
        problems.add("must be a string", field_name="description")
    inputs = _named_list(document.get("input"), "input", problems, allow_bare=True)
    variables = _named_list(document.get("vars"), "vars", problems, allow_bare=True)
    outputs = _named_list(document.get("output"), "output", problems, allow_bare=False)
    tasks_doc = document.get("tasks")
    tasks: dict[str, TaskSpec] = {}
    if not isinstance(tasks_doc, dict) or not tasks_doc:
        problems.add("a workflow needs at least one task (a mapping of task names)", field_name="tasks")
    else:
        for name, body in tasks_doc.items():
            task = _task(name, body, problems)
            if task is not None:
                tasks[task.name] = task
    declared = set(tasks_doc) if isinstance(tasks_doc, dict) else set()
    inbound, start = _graph(tasks, declared, problems)
    problems.raise_any()
    return WorkflowSpec(
        file=file_name, description=description,
        input=tuple((name, value, bare) for name, value, bare in inputs),
        vars=tuple((name, value) for name, value, _bare in variables),
        output=tuple((name, value) for name, value, _bare in outputs),
        tasks=tasks, start=start, inbound=inbound,
    )


def parse_inline_parameters(text: str) -> dict[str, Any] | None:
    """StackStorm's ``key=value key2="quoted value"`` (separated by spaces, commas or
    semicolons) as a dict; None when the text does not parse as a whole."""
    params: dict[str, Any] = {}
    position = _INLINE_SEPARATOR.match(text, 0).end()
    while position < len(text):
        match = _INLINE_PARAM.match(text, position)
        if not match:
            return None
        params[match.group("key")] = _inline_value(match.group("value"))
        position = _INLINE_SEPARATOR.match(text, match.end()).end()
    return params


def _inline_value(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        inner = raw[1:-1]
        if inner.startswith("{") and inner.endswith("}"):
            try:
                return json.loads(inner)
            except ValueError:
                return inner
        return inner
    if has_expression(raw):
        return raw
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        return json.loads(raw)
    except ValueError:
        return raw


# -- YAML -------------------------------------------------------------------------------------

def _parse_yaml(text: str, file_name: str) -> Any:
    if len(text.encode("utf-8", "replace")) > MAX_DOCUMENT:
        raise WorkflowError(f"the definition is larger than {MAX_DOCUMENT} bytes", file=file_name)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkflowError(f"not valid YAML: {exc}", file=file_name) from None
    except RecursionError:
        raise WorkflowError("the definition nests too deeply", file=file_name) from None
    _check_shape(document, file_name)
    return document


def _check_shape(document: Any, file_name: str) -> None:
    stack: list[tuple[Any, int]] = [(document, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise WorkflowError(f"the definition holds more than {MAX_NODES} values", file=file_name)
        if depth > MAX_DEPTH:
            raise WorkflowError(f"the definition nests deeper than {MAX_DEPTH} levels", file=file_name)
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


# -- sections ---------------------------------------------------------------------------------

def _named_list(value: Any, section: str, problems: _Problems,
                *, allow_bare: bool) -> list[tuple[str, Any, bool]]:
    """``input``/``vars``/``output``: a list of names or single-key ``{name: value}`` dicts."""
    if value is None:
        return []
    if isinstance(value, dict):  # tolerated: a plain mapping keeps its order
        value = [{key: item} for key, item in value.items()]
    if not isinstance(value, list):
        problems.add("must be a list of names or of single-key {name: value} mappings", field_name=section)
        return []
    entries: list[tuple[str, Any, bool]] = []
    seen: set[str] = set()
    for index, entry in enumerate(value):
        where = f"{section}[{index}]"
        if isinstance(entry, str) and allow_bare:
            name, default, bare = entry, None, True
        elif isinstance(entry, dict) and len(entry) == 1:
            name, default = next(iter(entry.items()))
            bare = False
        else:
            expected = "a name or a single-key {name: value} mapping" if allow_bare else \
                "a single-key {name: value} mapping"
            problems.add(f"must be {expected}", field_name=where)
            continue
        if not isinstance(name, str) or not _NAME.match(name):
            problems.add(f"{name!r} is not a valid name", field_name=where)
            continue
        if name in seen:
            problems.add(f"{name!r} is given twice", field_name=where)
        seen.add(name)
        _check_expressions(default, problems, None, f"{where}.{name}")
        entries.append((name, default, bare))
    return entries


def _check_expressions(value: Any, problems: _Problems, task: str | None, where: str) -> None:
    for message in syntax_errors(value):
        problems.add(message, task, where)


def _task(name: Any, body: Any, problems: _Problems) -> TaskSpec | None:
    if not isinstance(name, str) or not _NAME.match(name):
        problems.add(f"{name!r} is not a valid task name (letters, digits, '_' and '-')", field_name="tasks")
        return None
    if name in ENGINE_COMMANDS:
        problems.add(f"{name!r} is an engine command and cannot name a task", name, "name")
        return None
    if body is None:
        body = {}
    if not isinstance(body, dict):
        problems.add("a task must be a mapping", name, "tasks")
        return None
    for key in body:
        if key not in TASK_KEYS:
            problems.add(f"unknown key {key!r} (allowed: {', '.join(TASK_KEYS)})", name, str(key))
    action, inline = _action(name, body.get("action"), problems)
    task_input = body.get("input")
    if task_input is None:
        task_input = {}
    elif not isinstance(task_input, dict):
        problems.add("must be a mapping of parameter names to values", name, "input")
        task_input = {}
    merged = {**inline, **task_input}
    _check_expressions(merged, problems, name, "input")
    join = _join(name, body.get("join"), problems)
    items = _items(name, body.get("with"), problems) if "with" in body else None
    if items is not None and action is None:
        problems.add("'with' items need an action to run for each item", name, "with")
    retry = _retry(name, body.get("retry"), problems) if "retry" in body else None
    delay = body.get("delay")
    _check_positive(delay, name, "delay", problems, number=True)
    transitions = _transitions(name, body.get("next"), problems)
    return TaskSpec(name=name, action=action, input=merged, next=transitions, join=join, items=items,
                    retry=retry, delay=delay)


def _action(task: str, value: Any, problems: _Problems) -> tuple[str | None, dict[str, Any]]:
    if value is None:
        return None, {}
    if not isinstance(value, str) or not value.strip():
        problems.add("must be an action ref 'pack.name' (optionally followed by key=value parameters)",
                     task, "action")
        return None, {}
    text = value.strip()
    expression = re.match(rf"^(?:{_EXPRESSION})", text, re.DOTALL)
    if expression:
        ref, rest = expression.group(0), text[expression.end():]
        _check_expressions(ref, problems, task, "action")
    else:
        ref, _, rest = text.partition(" ")
        if not _ACTION_REF.match(ref):
            problems.add(f"{ref!r} is not an action ref of the form 'pack.name'", task, "action")
    params = parse_inline_parameters(rest)
    if params is None:
        problems.add(f"cannot parse the inline parameters {rest.strip()!r} (use key=value, quoting values "
                     "with spaces)", task, "action")
        params = {}
    return ref, params


def _join(task: str, value: Any, problems: _Problems) -> str | int | None:
    if value is None:
        return None
    if value == "all":
        return "all"
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    problems.add("must be 'all' or a positive number of inbound tasks", task, "join")
    return None


def _items(task: str, value: Any, problems: _Problems) -> Items | None:
    concurrency = None
    if isinstance(value, dict):
        for key in value:
            if key not in ITEMS_KEYS:
                problems.add(f"unknown key {key!r} (allowed: items, concurrency)", task, f"with.{key}")
        concurrency = value.get("concurrency")
        _check_positive(concurrency, task, "with.concurrency", problems, number=False)
        value = value.get("items")
        field_name = "with.items"
    else:
        field_name = "with"
    if isinstance(value, list):  # a literal list of items
        _check_expressions(value, problems, task, field_name)
        return Items(items=value, names=(), concurrency=concurrency)
    if not isinstance(value, str):
        problems.add("must be '<% items %>', 'x in <% items %>' or 'x, y in <% zip(...) %>'", task, field_name)
        return None
    match = _WITH_ITEMS.match(value)
    items = match.group("items") if match else ""
    if not match or not re.fullmatch(rf"(?:{_EXPRESSION})", items, re.DOTALL):
        problems.add(f"cannot parse {value!r}: expected '<% items %>', 'x in <% items %>' or "
                     "'x, y in <% zip(...) %>'", task, field_name)
        return None
    _check_expressions(items, problems, task, field_name)
    names = tuple(name.strip() for name in match.group("names").split(",")) if match.group("names") else ()
    if len(set(names)) != len(names):
        problems.add("an item name is given twice", task, field_name)
    return Items(items=items, names=names, concurrency=concurrency)


def _retry(task: str, value: Any, problems: _Problems) -> Retry | None:
    if not isinstance(value, dict):
        problems.add("must be a mapping with 'count' (and optional 'when', 'delay')", task, "retry")
        return None
    for key in value:
        if key not in RETRY_KEYS:
            problems.add(f"unknown key {key!r} (allowed: when, count, delay)", task, f"retry.{key}")
    if "count" not in value:
        problems.add("'count' is required", task, "retry.count")
    when = value.get("when", DEFAULT_RETRY_WHEN)
    if not isinstance(when, str):
        problems.add("must be an expression", task, "retry.when")
        when = DEFAULT_RETRY_WHEN
    _check_expressions(when, problems, task, "retry.when")
    _check_positive(value.get("count"), task, "retry.count", problems, number=False)
    _check_positive(value.get("delay"), task, "retry.delay", problems, number=True)
    return Retry(when=when, count=value.get("count"), delay=value.get("delay"))


def _check_positive(value: Any, task: str, where: str, problems: _Problems, *, number: bool) -> None:
    """A literal must be a positive int (or number); an expression is checked when it runs."""
    if value is None:
        return
    if isinstance(value, str):
        if has_expression(value):
            _check_expressions(value, problems, task, where)
            return
        try:
            value = float(value) if number else int(value)
        except ValueError:
            problems.add(f"{value!r} is neither a number nor an expression", task, where)
            return
    kinds = (int, float) if number else (int,)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        problems.add(f"must be a positive {'number' if number else 'integer'}, not {value!r}", task, where)


def _transitions(task: str, value: Any, problems: _Problems) -> tuple[Transition, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add("must be a list of transitions {when, publish, do}", task, "next")
        return ()
    transitions = []
    for index, entry in enumerate(value):
        where = f"next[{index}]"
        if not isinstance(entry, dict):
            problems.add("a transition must be a mapping {when, publish, do}", task, where)
            continue
        for key in entry:
            if key not in TRANSITION_KEYS:
                problems.add(f"unknown key {key!r} (allowed: when, publish, do)", task, f"{where}.{key}")
        when = entry.get("when")
        if when is not None and not isinstance(when, (str, bool)):
            problems.add("must be an expression", task, f"{where}.when")
            when = None
        if isinstance(when, bool):
            when = "<% true %>" if when else "<% false %>"
        if when is not None:
            _check_expressions(when, problems, task, f"{where}.when")
        publish = _publish(task, entry.get("publish"), f"{where}.publish", problems)
        do = _do(task, entry.get("do"), f"{where}.do", problems)
        transitions.append(Transition(when=when, publish=publish, do=do))
    return tuple(transitions)


def _publish(task: str, value: Any, where: str, problems: _Problems) -> tuple[tuple[str, Any], ...]:
    if value is None:
        return ()
    pairs: list[tuple[str, Any]] = []
    if isinstance(value, str):
        params = parse_inline_parameters(value)
        if params is None:
            problems.add(f"cannot parse {value!r} (use name=value pairs, quoting values with spaces)", task, where)
            return ()
        pairs = list(params.items())
    elif isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            if isinstance(entry, dict) and len(entry) == 1:
                pairs.append(next(iter(entry.items())))
            elif isinstance(entry, str) and parse_inline_parameters(entry):
                pairs.extend(parse_inline_parameters(entry).items())
            else:
                problems.add("must be a single-key {name: value} mapping", task, f"{where}[{index}]")
    else:
        problems.add("must be a list of {name: value}, a mapping, or 'name=value ...'", task, where)
        return ()
    for name, item in pairs:
        if not isinstance(name, str) or not _NAME.match(name):
            problems.add(f"{name!r} is not a valid variable name", task, where)
        _check_expressions(item, problems, task, f"{where}.{name}")
    return tuple(pairs)


def _do(task: str, value: Any, where: str, problems: _Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        names = [name.strip() for name in value.split(",")]
    elif isinstance(value, list) and all(isinstance(name, str) for name in value):
        names = [name.strip() for name in value]
    else:
        problems.add("must be a task name, 'a, b', or a list of task names", task, where)
        return ()
    if any(not name for name in names):
        problems.add("an empty task name", task, where)
    return tuple(name for name in names if name)


# -- the graph --------------------------------------------------------------------------------

def _targets(spec: TaskSpec) -> Iterator[tuple[int, str]]:
    for index, transition in enumerate(spec.next):
        for target in transition.do:
            yield index, target


def _graph(tasks: dict[str, TaskSpec], declared: set[str],
           problems: _Problems) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    inbound: dict[str, list[str]] = {name: [] for name in tasks}
    for name, spec in tasks.items():
        for index, target in _targets(spec):
            if target in ENGINE_COMMANDS:
                continue
            if target not in declared:
                problems.add(f"unknown task {target!r}", name, f"next[{index}].do")
            elif target in tasks and name not in inbound[target]:
                inbound[target].append(name)
    if len(tasks) != len(declared):
        return {}, ()  # a task is refused already: the graph checks would only repeat it
    start = tuple(name for name in tasks if not inbound[name])
    reached = set(start)
    frontier = list(start)
    while frontier:
        for _index, target in _targets(tasks[frontier.pop()]):
            if target in tasks and target not in reached:
                reached.add(target)
                frontier.append(target)
    for name, spec in tasks.items():
        if name not in reached:
            problems.add("unreachable: it is only entered from tasks in a cycle that nothing starts", name, "name")
        if spec.join is not None:
            if not inbound[name]:
                problems.add("'join' on a task that no task transitions to", name, "join")
            elif isinstance(spec.join, int) and spec.join > len(inbound[name]):
                problems.add(f"join count {spec.join} is larger than its {len(inbound[name])} inbound tasks",
                             name, "join")
    return {name: tuple(sources) for name, sources in inbound.items()}, start
