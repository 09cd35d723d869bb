"""What a key-value store key may be called, and how large its value may be (pure checks).

A key's name becomes a segment of its Vault path (``<prefix>/keys/system/<name>``), so the
pattern admits no '/' (no path traversal, no empty segment) and no leading '.' ('.', '..').
"""

from __future__ import annotations

import re

# \Z, not $: "$" also matches before a trailing newline.
KEY_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,254}\Z")
KEY_NAME_MESSAGE = "Use letters, digits, '_', '-', '.' and ':' (max 255), starting with a letter, digit or '_'."
MAX_KEY_VALUE = 64 * 1024  # characters; StackStorm's values are strings, kept modest
MAX_TTL = 10 * 365 * 24 * 3600  # ten years: longer is "never", so omit the ttl
SCOPES = ("system", "user")


def key_name_problems(name: object) -> list[str]:
    """Why ``name`` cannot name a key; empty when it can."""
    if not isinstance(name, str) or not KEY_NAME_PATTERN.match(name):
        return [KEY_NAME_MESSAGE]
    return []


def key_vault_path(scope: str, owner: str | None, name: str) -> str:
    """The key's path under VAULT_PREFIX: ``keys/system/<name>`` or ``keys/user/<owner>/<name>``."""
    if key_name_problems(name) or (scope == "user" and not owner) or scope not in SCOPES:
        raise ValueError(f"no Vault path for {scope}/{owner}/{name!r}")
    if scope == "system":
        return f"keys/system/{name}"
    if "/" in owner or owner in (".", ".."):  # identity names never are; refuse rather than escape
        raise ValueError(f"no Vault path for owner {owner!r}")
    return f"keys/user/{owner}/{name}"
