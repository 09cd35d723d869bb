"""Whether a sensor's Python file defines a polling sensor, read from its source (pure).

The web process never imports pack code: the class is found with ``ast``. A class is a
polling sensor when it (or a base class defined in the same file) derives from
``PollingSensor`` or defines ``poll``; one that derives from ``Sensor`` or only has a
``run()`` loop is refused, since Patchbay runs sensors as beat-scheduled polls.
"""

from __future__ import annotations

import ast

RUN_LOOP_REFUSED = (
    "{name} is a Sensor with a run() loop; Patchbay runs sensors only as polls scheduled by beat "
    "(each in its own process, with a timeout). Subclass PollingSensor "
    "(from st2reactor.sensor.base import PollingSensor) and move the loop's body into poll()."
)


def polling_sensor_problem(source: str, class_name: str) -> str | None:
    """Why ``class_name`` in ``source`` cannot run as a polling sensor, or None when it can."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return f"The sensor file is not valid Python (line {exc.lineno}: {exc.msg})."
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    if class_name not in classes:
        return f"The sensor file defines no class {class_name!r} at its top level."
    verdict = _kind(classes[class_name], classes, set())
    return RUN_LOOP_REFUSED.format(name=class_name) if verdict == "loop" else None


def _kind(node: ast.ClassDef, classes: dict[str, ast.ClassDef], seen: set[str]) -> str | None:
    """'polling', 'loop' or None (cannot tell: a base class from another module)."""
    seen.add(node.name)
    methods = {item.name for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if "poll" in methods:
        return "polling"
    verdicts = []
    for base in node.bases:
        name = base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else None
        if name == "PollingSensor":
            return "polling"
        if name == "Sensor":
            verdicts.append("loop")
        elif name in classes and name not in seen:
            verdicts.append(_kind(classes[name], classes, seen))
    if "polling" in verdicts:
        return "polling"
    if "loop" in verdicts or "run" in methods:
        return "loop"
    return None
