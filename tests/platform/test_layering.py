"""Imports flow one way (DESIGN.md): api → services → models/engine; tasks → services."""

from __future__ import annotations

import ast

import pytest

from app.config import ROOT

RULES = {
    "app": ("tasks", "sensors"),            # the web side enqueues by task name only
    "app/services": ("app.api",),
    "app/engine": ("app.api", "app.services", "app.models", "app.db"),  # pure logic, no I/O
    "app/models": ("app.api", "app.services"),
}


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(("folder", "forbidden"), sorted(RULES.items()))
def test_imports_flow_one_way(folder, forbidden):
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for module in imported_modules(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []
