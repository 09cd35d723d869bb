"""Hiding secret parameter values wherever they might surface: log lines, results, errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus

from app.engine.parameters import MASK

# Shorter values would mask ordinary words and digits everywhere; they stay masked as
# parameters (always) but are not searched for in free text.
MIN_MASKED_LENGTH = 4


def secret_strings(values: dict[str, Any]) -> list[str]:
    """The text forms of secret values worth searching for, longest first."""
    found = {str(v) for v in values.values() if v is not None and not isinstance(v, bool | dict | list)}
    found |= {str(item) for v in values.values() if isinstance(v, list) for item in v}
    found |= {str(item) for v in values.values() if isinstance(v, dict) for item in v.values()}
    # Output is masked line by line, so a multi-line secret (a private key, a certificate)
    # would never match whole: each of its lines is a secret string too.
    found |= {line.strip("\r") for text in list(found) if "\n" in text for line in text.split("\n")}
    # A secret put in a URL (a query parameter, user:password@) shows up percent-encoded in
    # error messages and logged URLs.
    found |= {form for text in list(found) for form in (quote(text, safe=""), quote_plus(text))}
    return sorted((s for s in found if len(s) >= MIN_MASKED_LENGTH and s != MASK), key=len, reverse=True)


def mask_text(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_value(value: Any, secrets: list[str]) -> Any:
    """``value`` (any JSON) with every occurrence of a secret in its strings masked."""
    if not secrets:
        return value
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, dict):
        return {mask_text(str(k), secrets): mask_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v, secrets) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in secrets:
        return MASK
    return value
