"""Name search: a user's text as a literal substring pattern for ILIKE."""

from __future__ import annotations

import re


def like_pattern(text: str) -> str:
    """A substring pattern for ILIKE with the user's wildcards (``%``, ``_``, ``\\``) escaped."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"
