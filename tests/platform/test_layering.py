"""Imports flow one way (DESIGN.md, docs/architecture.md): every module of app/, tasks/ and
sensors/, found from the tree, is checked against its folder's rules on the imports its
source really makes (ast: top-level and inside functions, relative ones resolved)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.config import ROOT

TOP = ("app", "tasks", "sensors")
IO = ("app.db", "app.extensions", "flask", "sqlalchemy", "psycopg", "redis", "hvac", "celery", "requests")

# Folder → what its modules (and those of its subfolders) must not import. Every folder
# directly under app/ and tasks/ has its own line, so a new one must state its rules here.
RULES: dict[str, tuple[str, ...]] = {
    "app": ("tasks", "sensors"),                  # the web side enqueues by task name only
    "app/api": (),
    "app/schemas": ("app.api", "app.services"),   # API shapes only
    "app/services": ("app.api",),
    "app/security": ("app.api", "app.services"),  # services use security, never the reverse
    "app/models": ("app.api", "app.services", "app.schemas", "app.security"),
    "app/engine": ("app.api", "app.services", "app.models", "app.schemas", "app.security",
                   "tasks", "sensors", *IO),      # pure logic, no I/O
    "tasks": ("app.api",),
    "tasks/runners": ("app.services", "app.api", "app.models", "app.db", "app.extensions"),
    "sensors": ("app.api",),
}
NO_CYCLES = ("tasks/runners", "app/services", "app/security", "app/engine")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, *, typing_only: bool = True) -> set[str]:
    """Every module ``path`` imports; ``from a import b`` counts as ``a`` and ``a.b``.
    ``typing_only=False`` leaves out imports under ``if TYPE_CHECKING:`` (they never run)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    skipped = set() if typing_only else {
        id(inner) for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(path): path for top in TOP for path in sorted((ROOT / top).rglob("*.py"))}
IMPORTS = {name: imported_modules(path) for name, path in MODULES.items()}
RUNTIME_IMPORTS = {name: imported_modules(path, typing_only=False) for name, path in MODULES.items()}


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def folder_of(module: str) -> str:
    path = MODULES[module]
    return str(path.parent.relative_to(ROOT))


def test_every_folder_has_its_rules():
    folders = {str(p.parent.relative_to(ROOT)) for p in MODULES.values()}
    first_level = {"/".join(f.split("/")[:2]) for f in folders if f.split("/")[0] in ("app", "tasks")}
    assert first_level | {"sensors"} <= set(RULES), "state the import rules of each new folder"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_one_way(module):
    folder = folder_of(module)
    forbidden = [f for key, rule in RULES.items() if folder == key or folder.startswith(key + "/") for f in rule]
    offenders = sorted(i for i in IMPORTS[module] if any(within(i, f) for f in forbidden))
    assert offenders == [], f"{MODULES[module].relative_to(ROOT)} imports {offenders}"


@pytest.mark.parametrize("folder", NO_CYCLES)
def test_no_import_cycle(folder):
    prefix = folder.replace("/", ".")
    inside = {m for m in MODULES if within(m, prefix)}
    # Only imports that run can make a cycle; edges go to the modules named, within the folder.
    edges = {m: {i for i in RUNTIME_IMPORTS[m] if i in inside and i != m} for m in inside}
    cycle = _find_cycle(edges)
    assert cycle is None, " → ".join(cycle or [])


def test_the_fixture_modules_are_found():
    # The enumeration itself: a rule over an empty set of modules would pass silently.
    assert {"app.engine.criteria", "tasks.runners.base", "sensors.scheduler", "app.schemas.common"} <= set(MODULES)
    assert "app.services.audit" in IMPORTS["app"]


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None
