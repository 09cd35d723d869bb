"""Hiding secret values wherever they might surface: log lines, results, errors.

A secret is searched for in every form it takes in text (docs/executions.md, "Secrets"):
as given; shell-quoted; JSON-, Python- and URL-escaped; base64. Base64 is also decoded where
it stands, so a secret inside a longer encoded text (``base64("user:" + password)`` in a
Basic ``Authorization`` header) masks the whole encoded run.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
from typing import Any
from urllib.parse import quote, quote_plus

from app.engine.parameters import MASK

# Shorter values would mask ordinary words and digits everywhere; they stay masked as
# parameters (always) but are not searched for in free text.
MIN_MASKED_LENGTH = 4

# A run of base64 (standard or URL-safe alphabet) long enough to hold a maskable secret,
# starting where a word starts: an encoded value begins at its own start.
BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{6,}={0,2}")
# Authorization schemes whose credentials are masked on their own as well.
AUTH_SCHEMES = ("basic", "bearer", "token", "apikey", "api-key", "key", "bot", "oauth", "jwt", "sso", "ssws")
# Characters bash's printf %q leaves alone; it puts a backslash before every other one.
SHELL_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]")


def text_forms(secret: str) -> set[str]:
    """The ways ``secret`` can be written in stored text."""
    forms = {
        secret,
        # Shell: shlex.quote (with '"'"'), the '\'' idiom, double quotes, printf %q.
        shlex.quote(secret), secret.replace("'", "'\"'\"'"), secret.replace("'", "'\\''"),
        re.sub(r'([\\"$`])', r"\\\1", secret),
        "".join(c if SHELL_PLAIN.fullmatch(c) else "\\" + c for c in secret),
        # JSON with and without \u escapes; Python's repr (exception messages quote that way).
        json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1],
        # URLs: a query value, a path segment, a form body.
        quote(secret, safe=""), quote(secret), quote_plus(secret),
    }
    raw = secret.encode("utf-8")
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms |= {encoded, encoded.rstrip("=")}
    return forms


def credential_parts(secret: str) -> set[str]:
    """``Bearer <token>`` and ``Basic <base64 user:password>`` hide their credentials too."""
    scheme, _, credentials = secret.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() not in AUTH_SCHEMES or not credentials:
        return set()
    parts = {credentials}
    if scheme.lower() == "basic":
        try:
            pair = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return parts
        parts |= {pair, pair.partition(":")[2]}
    return parts


def secret_strings(values: dict[str, Any]) -> list[str]:
    """The text forms of secret values worth searching for, longest first."""
    found = {str(v) for v in values.values() if v is not None and not isinstance(v, bool | dict | list)}
    found |= {str(item) for v in values.values() if isinstance(v, list) for item in v}
    found |= {str(item) for v in values.values() if isinstance(v, dict) for item in v.values()}
    found |= {part for text in list(found) for part in credential_parts(text)}
    # Output is masked line by line, so a multi-line secret (a private key, a certificate)
    # would never match whole: each of its lines is a secret string too.
    found |= {line.strip("\r") for text in list(found) if "\n" in text for line in text.split("\n")}
    # A short secret is not searched for in any form (its quoted or encoded forms are longer).
    forms = {form for text in found if len(text) >= MIN_MASKED_LENGTH for form in text_forms(text)}
    # Quoting keeps a newline as it is: a quoted multi-line secret spans lines of output too.
    forms |= {line.strip("\r") for form in list(forms) if "\n" in form for line in form.split("\n")}
    return sorted((s for s in forms if len(s) >= MIN_MASKED_LENGTH and s != MASK), key=len, reverse=True)


def add_secret_strings(hidden: list[str], values: dict[str, Any]) -> None:
    """Add the forms of more secret ``values`` to ``hidden`` in place (it may be in use)."""
    if values:
        hidden[:] = sorted(set(hidden) | set(secret_strings(values)), key=len, reverse=True)


def _decoded(run: str) -> bytes:
    text = run.rstrip("=").replace("-", "+").replace("_", "/")
    text = text[: len(text) - len(text) % 4] if len(text) % 4 == 1 else text
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return b""


def _mask_base64(text: str, secrets: list[str]) -> str:
    """Mask each base64 run whose decoded bytes contain a secret (in any of its forms)."""
    wanted = [secret.encode("utf-8") for secret in secrets]
    shortest = min(len(secret) for secret in wanted)

    def replace(match: re.Match[str]) -> str:
        decoded = _decoded(match.group(0)) if len(match.group(0)) * 3 // 4 >= shortest else b""
        return MASK if decoded and any(secret in decoded for secret in wanted) else match.group(0)

    return BASE64_RUN.sub(replace, text)


def mask_text(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _mask_base64(text, secrets) if secrets else text


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
