"""Secret values in Vault/OpenBao (KV v2 at VAULT_MOUNT, under VAULT_PREFIX).

One hvac client per process and address, logged in with VAULT_TOKEN or AppRole
(VAULT_ROLE_ID / VAULT_SECRET_ID); an expired AppRole token is renewed by logging in again.
"""

from __future__ import annotations

import threading
from typing import Any

import hvac
from flask import current_app
from hvac.exceptions import Forbidden, InvalidPath, Unauthorized

from app.errors import APIError

_clients: dict[str, hvac.Client] = {}
_lock = threading.Lock()


class VaultUnavailable(APIError):
    code = 503

    def __init__(self, message: str = "The secret store is not available.", errors: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        # The body names Vault, so a client knows which dependency is down.
        super().__init__(message, {"service": "vault", **(errors or {})}, **kwargs)


def _unavailable(exc: Exception) -> VaultUnavailable:
    error = VaultUnavailable("The secret store is not available.")
    error.__cause__ = exc
    return error


def _login(config: dict[str, Any]) -> hvac.Client:
    # VAULT_CACERT: a CA bundle for a Vault whose TLS certificate a private CA signed.
    client = hvac.Client(url=config["VAULT_ADDR"], timeout=10, verify=config.get("VAULT_CACERT") or True)
    if config["VAULT_TOKEN"]:
        client.token = config["VAULT_TOKEN"]
    else:
        client.auth.approle.login(role_id=config["VAULT_ROLE_ID"], secret_id=config["VAULT_SECRET_ID"])
    return client


def client(fresh: bool = False) -> hvac.Client:
    config = current_app.config
    with _lock:
        existing = _clients.get(config["VAULT_ADDR"])
        if existing is None or fresh:
            existing = _clients[config["VAULT_ADDR"]] = _login(config)
        return existing


def _full_path(path: str) -> str:
    prefix = current_app.config["VAULT_PREFIX"].strip("/")
    return f"{prefix}/{path}" if prefix else path


def _call(operation):
    """Run ``operation(kv)`` once more with a fresh login if the token expired."""
    try:
        return operation(client().secrets.kv.v2)
    except (Forbidden, Unauthorized):
        if current_app.config["VAULT_TOKEN"]:
            raise
        return operation(client(fresh=True).secrets.kv.v2)


def write_secret(path: str, values: dict[str, Any]) -> None:
    mount = current_app.config["VAULT_MOUNT"]
    try:
        _call(lambda kv: kv.create_or_update_secret(path=_full_path(path), secret=values, mount_point=mount))
    except Exception as exc:  # any hvac/requests failure means the secret is not stored
        raise VaultUnavailable("The secret store is not available.") from exc


def read_secret(path: str) -> dict[str, Any] | None:
    mount = current_app.config["VAULT_MOUNT"]
    try:
        answer = _call(lambda kv: kv.read_secret_version(
            path=_full_path(path), mount_point=mount, raise_on_deleted_version=True))
    except InvalidPath:
        return None
    except APIError:
        raise
    except Exception as exc:  # unreachable, sealed, refused: the value cannot be read
        raise _unavailable(exc) from exc
    return answer["data"]["data"]


def delete_secret(path: str) -> None:
    """Remove every version and the metadata (a plain delete keeps old versions readable)."""
    mount = current_app.config["VAULT_MOUNT"]
    try:
        _call(lambda kv: kv.delete_metadata_and_all_versions(path=_full_path(path), mount_point=mount))
    except InvalidPath:
        pass
    except APIError:
        raise
    except Exception as exc:
        raise _unavailable(exc) from exc


def ensure_available(path: str) -> None:
    """Raise VaultUnavailable unless Vault answers about ``path`` (before a change that will
    need it; reads the metadata, which Patchbay's policy allows)."""
    mount = current_app.config["VAULT_MOUNT"]
    try:
        _call(lambda kv: kv.read_secret_metadata(path=_full_path(path), mount_point=mount))
    except InvalidPath:
        pass
    except APIError:
        raise
    except Exception as exc:
        raise _unavailable(exc) from exc


def execution_secret_path(execution_id: int) -> str:
    return f"executions/{execution_id}"


def list_keys(path: str) -> list[str]:
    """The names directly under ``path`` (empty when there are none)."""
    mount = current_app.config["VAULT_MOUNT"]
    try:
        answer = _call(lambda kv: kv.list_secrets(path=_full_path(path), mount_point=mount))
    except InvalidPath:
        return []
    return list(answer["data"]["keys"])


def created_time(path: str) -> str | None:
    """When the secret at ``path`` was first written (RFC 3339), None if there is none."""
    mount = current_app.config["VAULT_MOUNT"]
    try:
        answer = _call(lambda kv: kv.read_secret_metadata(path=_full_path(path), mount_point=mount))
    except InvalidPath:
        return None
    return answer["data"]["created_time"]
