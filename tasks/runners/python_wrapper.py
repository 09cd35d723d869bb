"""Runs inside the python-script child process: load the action file, call run(), report.

Started as a file (``python -u python_wrapper.py``), never imported by Patchbay, and it
imports nothing from Patchbay. The request arrives as JSON on stdin (so parameters,
secrets and the run token never show in ``ps`` or ``/proc/<pid>/environ``); the outcome is written as JSON to the file the request
names, so the action's own prints stay ordinary log lines.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ST2COMPAT = os.path.join(HERE, "st2compat")


def action_class(module: Any) -> type:
    """The one Action subclass the file defines, else the one class with a run() method."""
    from st2common.runners.base_action import Action

    local = [c for c in vars(module).values() if inspect.isclass(c) and c.__module__ == module.__name__]
    candidates = [c for c in local if issubclass(c, Action) and not inspect.isabstract(c)]
    candidates = candidates or [c for c in local if callable(getattr(c, "run", None))]
    if len(candidates) != 1:
        found = ", ".join(c.__name__ for c in candidates) or "none"
        raise TypeError(f"the file must define exactly one action class with run(); found: {found}")
    return candidates[0]


def instantiate(cls: type, config: dict[str, Any]) -> Any:
    try:
        takes_config = len(inspect.signature(cls).parameters) > 0
    except (TypeError, ValueError):
        takes_config = True
    return cls(config) if takes_config else cls()


def outcome_of(value: Any) -> dict[str, Any]:
    # StackStorm: run() returning (bool, result) says itself whether it succeeded.
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
        return {"status": "succeeded" if value[0] else "failed", "result": value[1]}
    return {"status": "succeeded", "result": value}


def main() -> int:
    request = json.load(sys.stdin)
    sys.stdin.close()
    sys.stdin = open(os.devnull)  # the action reads nothing from us
    if sys.path and os.path.abspath(sys.path[0] or ".") == HERE:
        sys.path.pop(0)  # our own directory would shadow the action's imports
    path = request["file"]
    sys.path[:0] = [os.path.dirname(path), *request.get("lib_paths", []), ST2COMPAT]

    import st2common.runners.base_action as base_action
    from patchbay_child import hand_over, load_module

    base_action.DATASTORE.update(request.get("datastore") or {})
    base_action.PACK = request.get("pack", "")
    base_action.API.update(hand_over(request.get("api")))
    try:
        instance = instantiate(action_class(load_module(path, "patchbay_action")), request.get("config") or {})
        outcome = outcome_of(instance.run(**request.get("parameters", {})))
    except SystemExit as exc:
        outcome = {"status": "failed", "result": None, "error": f"The action called sys.exit({exc.code!r})."}
    except BaseException as exc:  # any failure of the action is its result
        traceback.print_exc()
        outcome = {"status": "failed", "result": None, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    try:
        text = json.dumps(outcome, default=str)
    except (TypeError, ValueError) as exc:  # e.g. non-string keys or a circular structure
        outcome = {"status": "failed", "result": None, "error": f"The result is not JSON: {exc}"}
        text = json.dumps(outcome)
    with open(request["result_path"], "w", encoding="utf-8") as out:
        out.write(text)
    return 0 if outcome["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
