"""Whether a value is a Jinja template: the one test the checks and the renderer share."""

from __future__ import annotations

from typing import Any


def is_template(value: Any) -> bool:
    """A string holding ``{{ }}`` or ``{% %}``: its value is known only once rendered."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)
