"""Paths inside a pack on disk, symlinks followed and never leading out of the pack.

Shared by pack registration (app/services) and the workers' runners and sensors, which
must not import services.
"""

from __future__ import annotations

from pathlib import Path

from app.engine.workflows import MAX_DOCUMENT, WorkflowSpec, load_workflow


def inside(path: Path | None, directory: Path) -> bool:
    """Whether ``path`` (already resolved) is ``directory`` or under it."""
    return path is not None and (path == directory or directory in path.parents)


def resolve(path: Path) -> Path | None:
    """``path`` with symlinks followed, or None for a symlink loop or an unreadable path."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # ValueError: a name the file system cannot encode
        return None


class EntryPointOutside(ValueError):
    """An entry point that (symlinks followed) leads outside its pack."""


def locate_entry_point(directory: Path, folder: str, entry_point: str) -> Path | None:
    """The file ``entry_point`` names, or None when there is none.

    StackStorm resolves an entry point against the folder of its metadata file (actions/,
    sensors/); a path from the pack's root is accepted too. The loader and the runners both
    look here, in this order. Raises EntryPointOutside for a path leading out of the pack.
    """
    for base in (directory, directory / folder):
        target = resolve(base / entry_point)
        if target is None or not inside(target, directory):
            raise EntryPointOutside(entry_point)
        if target.is_file():
            return target
    return None


def read_workflow_file(path: Path | str) -> WorkflowSpec:
    """The workflow definition in ``path``, parsed and checked (WorkflowError, OSError).

    One byte past the size limit is read: enough for load_workflow to refuse a file that is
    too large without reading all of it.
    """
    with open(path, encoding="utf-8") as handle:
        return load_workflow(handle.read(MAX_DOCUMENT + 1), Path(path).name)
