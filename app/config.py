"""Configuration from the environment (12-factor).

Every setting Patchbay reads is declared once in ``SETTINGS``; the README's configuration
table mirrors it. A missing or invalid value raises ``ConfigError`` naming the variable, and
the entry points turn that into one line on stderr and exit status 2.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """A setting is missing or invalid; the message names it."""


def database_url(value: str) -> str:
    """Accept Heroku's ``postgres://`` and plain ``postgresql://``; use psycopg 3."""
    parts = urlsplit(value)
    if parts.scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        return urlunsplit(("postgresql+psycopg",) + tuple(parts)[1:])
    raise ValueError("must be a postgres:// or postgresql:// URL")


def redis_url(value: str) -> str:
    """Accept ``redis://`` and ``rediss://`` (TLS, as Heroku Redis gives)."""
    parts = urlsplit(value)
    if parts.scheme == "redis":
        return value
    if parts.scheme == "rediss":
        # Heroku's Redis uses self-signed certificates; Celery and redis-py both require
        # ssl_cert_reqs to be spelled out on rediss:// URLs.
        query = dict(parse_qsl(parts.query))
        query.setdefault("ssl_cert_reqs", os.environ.get("REDIS_SSL_CERT_REQS", "required"))
        return urlunsplit(parts._replace(query=urlencode(query)))
    raise ValueError("must be a redis:// or rediss:// URL")


def http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


def optional_http_url(value: str) -> str:
    return http_url(value) if value else ""


def positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def directory(value: str) -> str:
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory")
    return str(path)


def log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def secret_key(value: str) -> str:
    if len(value) < 32:
        raise ValueError("must be at least 32 characters")
    return value


def uid_range(value: str) -> range:
    """``first-last`` (inclusive), unprivileged uids only."""
    first, sep, last = value.partition("-")
    try:
        low, high = int(first), int(last if sep else first)
    except ValueError:
        raise ValueError("must be a range of uids like 61000-61999") from None
    if not 1000 <= low <= high <= 2**31 - 2:
        raise ValueError("must be a range of unprivileged uids (1000 or above) like 61000-61999")
    return range(low, high + 1)


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return lowered
    return parse


def word_list(value: str) -> tuple[str, ...]:
    """Comma- or space-separated words."""
    return tuple(word for word in value.replace(",", " ").split() if word)


def non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be 0 or a positive integer")
    return number


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: str | None
    doc: str
    required: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", database_url, None, "PostgreSQL URL (`postgres://` accepted)", True),
    Setting("REDIS_URL", redis_url, None, "Redis URL, broker and result backend (`rediss://` accepted)", True),
    Setting("VAULT_ADDR", http_url, None, "Vault/OpenBao address for secrets", True),
    Setting("VAULT_TOKEN", str, "", "Vault token (or use VAULT_ROLE_ID/VAULT_SECRET_ID)"),
    Setting("VAULT_ROLE_ID", str, "", "AppRole role id (instead of VAULT_TOKEN)"),
    Setting("VAULT_SECRET_ID", str, "", "AppRole secret id"),
    Setting("VAULT_MOUNT", str, "secret", "KV v2 mount point holding Patchbay's secrets"),
    Setting("VAULT_PREFIX", str, "patchbay", "path prefix inside the KV mount"),
    Setting("VAULT_CACERT", str, "", "CA bundle (PEM file) to verify Vault's TLS certificate; empty: the system's CAs"),
    Setting("SECRET_KEY", secret_key, None, "*required* by web and release (workers do not need it): at least 32 characters; the keys that sign JWTs and hash API keys are derived from it"),
    Setting("PACKS_PATH", directory, str(ROOT / "packs"), "directory packs are registered from"),
    Setting("PORT", positive_int, "8000", "port the web process listens on"),
    Setting("MAX_BODY_BYTES", positive_int, str(1024 * 1024), "largest request body accepted (413 above)"),
    Setting("LOG_LEVEL", log_level, "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Setting("LOG_FORMAT", str, "json", "`json` (one object per line) or `text`"),
    Setting("JWT_ACCESS_TOKEN_MINUTES", positive_int, "15", "access token lifetime"),
    Setting("JWT_REFRESH_TOKEN_DAYS", positive_int, "7", "refresh token lifetime"),
    Setting("ALLOW_REGISTRATION", boolean, "false", "enables `POST /api/v1/auth/register`"),
    Setting("LOGIN_RATE_LIMIT", str, "10 per minute", "flask-limiter rate for login attempts"),
    Setting("PATCHBAY_ADMIN_USER", str, "", "first admin created by the release step"),
    Setting("PATCHBAY_ADMIN_PASSWORD", str, "", "that admin's password"),
    Setting("FLOWER_BASIC_AUTH", str, "", "`user:password` protecting Flower (required by the flower process)"),
    Setting("EXECUTION_LOG_MAX_BYTES", positive_int, str(1024 * 1024), "log bytes kept per execution; a marker shows truncation"),
    Setting("EXECUTION_DEFAULT_TIMEOUT", positive_int, "600", "seconds an action may run when it sets no timeout"),
    Setting("HEARTBEAT_SECONDS", positive_int, "5", "how often a running execution proves its worker is alive"),
    Setting("ABANDON_AFTER_SECONDS", positive_int, "30", "stale heartbeat age after which a running execution is abandoned"),
    Setting("REQUEUE_AFTER_SECONDS", positive_int, "60", "age after which a `requested`/`pending` row is re-enqueued"),
    Setting("WORKER_CONCURRENCY", positive_int, "2", "pool processes per worker"),
    Setting("ACTION_ISOLATION", choice("auto", "uid", "same-user"), "auto",
            "`uid`: each execution runs under its own uid from `ACTION_UIDS` (the worker must be root); `same-user`: actions run as the worker's user, which makes itself non-dumpable; `auto`: `uid` when the worker is root"),
    Setting("ACTION_UIDS", uid_range, "61000-61999", "uids (and gids) executions run under with `uid` isolation; no other process may use them"),
    Setting("ACTION_PYTHON", str, "", "interpreter for python-script actions; empty: the worker's own when every user may run it, else `/usr/bin/python3`"),
    Setting("HTTP_ALLOWED_NETWORKS", word_list, "", "hosts or CIDRs the http-request runner may reach although they are loopback, private or link-local (comma-separated)"),
    Setting("PROXY_HOPS", non_negative_int, "0", "reverse proxies in front of web whose `X-Forwarded-For` is trusted (1 on Heroku)"),
    Setting("FOLLOW_STREAMS_PER_IDENTITY", positive_int, "4", "live log streams (`follow=true`) one identity may hold open at once"),
    Setting("FOLLOW_STREAMS_TOTAL", positive_int, "32", "live log streams open at once across all web processes"),
    Setting("PATCHBAY_API_URL", optional_http_url, "", "where workers reach the web API (e.g. `http://web.internal:8000`): python actions and sensors call the keys API there with a run token (`make run` sets it); empty: a python action's `action_service` reads only the values it was started with and its writes are not kept"),
    Setting("EVENT_RETENTION_DAYS", positive_int, "7", "days events and their enforcements are kept before a periodic task purges them"),
    Setting("FOLLOW_STREAM_THREADS", positive_int, "4", "live log streams one web process serves at once, on threads of their own (the Procfile adds them to `WEB_THREADS`)"),
)


def load_settings(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Read and validate every setting; raise ConfigError naming the first bad one."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = env.get(setting.name)
        if raw is None or raw == "":
            if setting.required:
                raise ConfigError(f"{setting.name} is not set: {setting.doc}")
            raw = setting.default
        try:
            values[setting.name] = setting.parse(raw) if raw is not None else None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{setting.name} is invalid: {exc}") from None
    if not values["VAULT_TOKEN"] and not (values["VAULT_ROLE_ID"] and values["VAULT_SECRET_ID"]):
        raise ConfigError("VAULT_TOKEN is not set: give a token or VAULT_ROLE_ID and VAULT_SECRET_ID")
    if values["LOG_FORMAT"] not in ("json", "text"):
        raise ConfigError("LOG_FORMAT is invalid: must be json or text")
    return values


def markdown_table() -> str:
    """The README's configuration table, generated from SETTINGS (a test keeps them equal)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        if setting.required:
            default = "*required*"
        elif setting.name == "PACKS_PATH":
            default = "`./packs`"
        else:
            default = f"`{setting.default}`" if setting.default else ""
        rows.append(f"| `{setting.name}` | {default} | {setting.doc} |")
    return "\n".join(rows)
