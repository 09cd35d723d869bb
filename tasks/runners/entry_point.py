"""Find an action's entry point inside its pack, refusing paths that lead outside it."""

from __future__ import annotations

from pathlib import Path

from app.pack_paths import EntryPointOutside, locate_entry_point
from tasks.runners.base import RunContext


class EntryPointError(ValueError):
    """The entry point is missing, outside the pack, or not a file."""


def entry_point_path(ctx: RunContext) -> str:
    """``<pack>/<entry_point>``, or StackStorm's ``<pack>/actions/<entry_point>``.

    Symlinks are resolved before the check, so a link pointing outside the pack is refused.
    """
    if not ctx.pack_path:
        raise EntryPointError(f"The pack {ctx.pack!r} is not on this worker.")
    if not ctx.entry_point:
        raise EntryPointError("The action has no entry_point.")
    try:
        path = locate_entry_point(Path(ctx.pack_path).resolve(), "actions", ctx.entry_point)
    except EntryPointOutside:
        raise EntryPointError(f"The entry_point {ctx.entry_point!r} leads outside the pack.") from None
    if path is None:
        raise EntryPointError(f"The entry_point {ctx.entry_point!r} is not a file in the pack {ctx.pack!r}.")
    return str(path)
