"""Making an action's output storable: PostgreSQL refuses NUL in text and JSONB, and a lone
UTF-16 surrogate cannot be encoded for the wire.

An action may print either (``printf 'a\\0b'``, a Python action returning ``"\\ud800"``);
one such character must not keep its execution from ending (the INSERT or UPDATE would fail
and leave it ``running``), so each becomes U+FFFD, as undecodable bytes already do.
"""

from __future__ import annotations

import re
from typing import Any

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def storable_text(text: str) -> str:
    return UNSTORABLE.sub(REPLACEMENT, text) if UNSTORABLE.search(text) else text


def storable_value(value: Any) -> Any:
    """``value`` (any JSON) with every string and key made storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(str(k)): storable_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_value(v) for v in value]
    return value
