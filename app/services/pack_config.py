"""A pack's configuration: plain values in PostgreSQL, secret ones in Vault.

``packs.config`` holds the config with ``********`` wherever its schema declares a value
``secret: true`` (at any depth); the values themselves live in Vault at
``<VAULT_PREFIX>/packs/<name>/config``, keyed by JSON Pointer. ``store`` splits a config
given through the API (Vault first, with an undo if the transaction rolls back);
``runtime`` joins them again for whoever needs the real values — the worker rendering
templates, a sensor's poll, a rule's preview, a webhook checking its token — and gives the
secret values apart, to be masked wherever output is shown.

A value stays secret once stored as one: a later schema that drops ``secret: true`` does not
bring it back into PostgreSQL; only a new value, given in clear, makes it plain.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from app.engine.config_secrets import (
    Path,
    from_pointer,
    is_absent,
    pointer,
    secret_config_paths,
    value_at,
    with_values,
)
from app.engine.parameters import MASK
from app.models import Pack
from app.services import unit_of_work, vault

_cache: dict[tuple[int, Any], tuple[dict[str, Any], dict[Path, Any]]] = {}
_cache_lock = threading.Lock()
CACHE_SIZE = 256


def vault_path(pack_name: str) -> str:
    return f"packs/{pack_name}/config"


def stored_secrets(pack_name: str) -> dict[Path, Any]:
    stored = vault.read_secret(vault_path(pack_name)) or {}
    return {from_pointer(key): value for key, value in stored.items()}


def split(pack_name: str, schema: Any, config: dict[str, Any], previous: dict[Path, Any]) -> tuple[
        dict[str, Any], dict[Path, Any], dict[str, Any]]:
    """(config for PostgreSQL, secrets for Vault, config with every real value for checks).

    A ``********`` sent back for a secret keeps the stored value."""
    secrets: dict[Path, Any] = {}
    declared = set(secret_config_paths(schema))
    for path in declared | set(previous):
        value = value_at(config, path)
        if is_absent(value) or value is None:
            continue
        if value == MASK:
            if path in previous:
                secrets[path] = previous[path]
        elif path in declared or path not in previous:
            secrets[path] = value
        # else: a formerly secret value given anew in clear, its schema no longer secret: plain.
    real = with_values(config, secrets)
    shown = with_values(config, dict.fromkeys(secrets, MASK))
    return shown, secrets, real


def store(pack: Pack, schema: Any, config: dict[str, Any], *, new: bool = False) -> dict[str, Any]:
    """Write the secrets of ``config`` to Vault (undone if the transaction rolls back) and
    return what PostgreSQL keeps; the real values are checked by the caller first via
    ``real_config``."""
    previous = {} if new else stored_secrets(pack.name)
    shown, secrets, _real = split(pack.name, schema, config, previous)
    if secrets != previous:
        path = vault_path(pack.name)
        if secrets:
            vault.write_secret(path, {pointer(p): v for p, v in secrets.items()})
        else:
            vault.delete_secret(path)
        if previous:
            unit_of_work.on_rollback(vault.write_secret, path, {pointer(p): v for p, v in previous.items()})
        else:
            unit_of_work.on_rollback(vault.delete_secret, path)
    return shown


def real_config(pack: Pack | None, schema: Any, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with masked secrets replaced by the stored values (to validate it)."""
    previous = stored_secrets(pack.name) if pack is not None and pack.id is not None else {}
    return split(pack.name if pack else "", schema, config, previous)[2]


def runtime(pack: Pack | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the config with its secrets, {pointer: secret value}) — Vault is read only when the
    stored config holds a masked value, and once per change of the pack row per process."""
    if pack is None:
        return {}, {}
    config = pack.config or {}
    if not _holds_mask(config):
        # Nothing in Vault; a row written before secrets moved there may still hold one in
        # clear, which is masked all the same (it moves to Vault when the config is next set).
        return copy.deepcopy(config), declared_secrets(pack.config_schema, config)
    key = (pack.id, pack.updated_at)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is None:
        secrets = stored_secrets(pack.name)
        hit = (with_values(config, secrets), secrets)
        with _cache_lock:
            if len(_cache) >= CACHE_SIZE:
                _cache.clear()
            _cache[key] = hit
    full, secrets = hit
    return copy.deepcopy(full), {pointer(path): value for path, value in secrets.items()}


def declared_secrets(schema: Any, config: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for path in secret_config_paths(schema):
        value = value_at(config, path)
        if not is_absent(value) and value is not None and value != MASK:
            found[pointer(path)] = value
    return found


def forget(pack_name: str) -> None:
    """After the pack's deletion has committed: its secrets go too."""
    vault.delete_secret(vault_path(pack_name))


def _holds_mask(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif item == MASK:
            return True
    return False
