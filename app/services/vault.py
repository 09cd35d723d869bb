"""Secret values in Vault/OpenBao (KV v2 at VAULT_MOUNT, under VAULT_PREFIX).

One hvac client per process and address, logged in with VAULT_TOKEN or AppRole
(VAULT_ROLE_ID / VAULT_SECRET_ID); an expired AppRole token is renewed by logging in again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import hvac
from flask import current_app
from hvac.exceptions import Forbidden, InvalidPath, Unauthorized

from app.errors import APIError

_clients: dict[str, hvac.Client] = {}
_lock = threading.Lock()


class VaultUnavailable(APIError):
    code = 503

    def __init__(self, message: str = "Vault (the secret store) is not available.", errors: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        # The body names Vault, so a client knows which dependency is down.
        super().__init__(message, {"service": "vault", **(errors or {})}, **kwargs)


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


def _at(path: str, operation: Callable[[Any, str, str], Any], *, missing_ok: bool = True) -> Any:
    """``operation(kv, full_path, mount)``; None where nothing is stored at ``path`` (for a
    write, ``missing_ok=False``: a missing mount means the secret is not stored).

    Any other failure (unreachable, sealed, refused) is VaultUnavailable: a 503 naming
    Vault, never a 500.
    """
    mount = current_app.config["VAULT_MOUNT"]
    try:
        return _call(lambda kv: operation(kv, _full_path(path), mount))
    except InvalidPath as exc:
        if missing_ok:
            return None
        raise VaultUnavailable() from exc
    except APIError:
        raise
    except Exception as exc:  # noqa: BLE001 - see the docstring
        raise VaultUnavailable() from exc


def write_secret(path: str, values: dict[str, Any]) -> None:
    _at(path, lambda kv, full, mount: kv.create_or_update_secret(path=full, secret=values, mount_point=mount),
        missing_ok=False)


def read_secret(path: str) -> dict[str, Any] | None:
    answer = _at(path, lambda kv, full, mount: kv.read_secret_version(
        path=full, mount_point=mount, raise_on_deleted_version=True))
    return answer["data"]["data"] if answer else None


def delete_secret(path: str) -> None:
    """Remove every version and the metadata (a plain delete keeps old versions readable)."""
    _at(path, lambda kv, full, mount: kv.delete_metadata_and_all_versions(path=full, mount_point=mount))


def ensure_available(path: str) -> None:
    """Raise VaultUnavailable unless Vault answers about ``path`` (before a change that will
    need it; reads the metadata, which Patchbay's policy allows)."""
    _metadata(path)


def _metadata(path: str) -> dict[str, Any] | None:
    answer = _at(path, lambda kv, full, mount: kv.read_secret_metadata(path=full, mount_point=mount))
    return answer["data"] if answer else None


def list_keys(path: str) -> list[str]:
    """The names directly under ``path`` (empty when there are none)."""
    answer = _at(path, lambda kv, full, mount: kv.list_secrets(path=full, mount_point=mount))
    return list(answer["data"]["keys"]) if answer else []


def created_time(path: str) -> str | None:
    """When the secret at ``path`` was first written (RFC 3339), None if there is none."""
    metadata = _metadata(path)
    return metadata["created_time"] if metadata else None


def execution_secret_path(execution_id: int) -> str:
    return f"executions/{execution_id}"
