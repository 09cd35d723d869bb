"""The key-value store: metadata and plain values in PostgreSQL, secret values in Vault only.

A secret lives at ``<VAULT_PREFIX>/keys/system/<name>`` or ``keys/user/<owner>/<name>``
(app/engine/key_names.py). Writes keep the row and the secret together:

- the row is flushed first, so a duplicate or a concurrent writer of the same key fails (or
  waits on the unique index) before Vault is touched and cannot clobber another's secret;
- then Vault is written, with ``on_rollback`` undoing a new secret (or restoring the value a
  PUT replaced) should the transaction not commit; the view commits;
- a secret that loses its row (DELETE, or PUT making it plain) is deleted from Vault only
  after that commit, and only when no row points at it again by then.

An expired key is absent from every read; ``purge_batch`` deletes the rows (and, under the
row lock, their secrets) in batches, run by tasks/maintenance.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, delete, false, or_, select

from app.db import db, utcnow
from app.engine.key_names import key_name_problems, key_vault_path
from app.errors import Conflict, Forbidden, NotFound, ValidationError
from app.models import Key
from app.security.principal import Principal, RunScope
from app.services import audit, unit_of_work, vault
from app.services.identities import find_identity

MANAGE = "rbac:manage"
DECRYPT = "keys:decrypt"
PURGE_BATCH = 500
VALUE_FIELD = "value"  # the one field a secret keeps in Vault


@dataclass(frozen=True)
class Target:
    """Which key a request means: its scope and owner (None for system)."""

    scope: str
    owner: str | None

    def describe(self, name: str) -> str:
        return f"{self.scope} key {name!r}" + (f" of {self.owner!r}" if self.owner else "")


def target_for(principal: Principal, scope: str, user: str | None) -> Target:
    """The scope and owner a caller acts on: their own user-scoped keys, or (rbac:manage)
    another identity's with ``user``. ``user`` on a system key is refused. A run token reaches
    its own user's keys only: another identity's are as absent as missing ones."""
    run = principal.run_scope
    if run is not None and scope == "user" and user and user != principal.name:
        raise NotFound(f"The user key does not exist for {run.describe()}.")
    if scope == "system":
        if user:
            raise ValidationError("The request is not valid.", {"user": ["Only user-scoped keys have an owner."]})
        return Target("system", None)
    if not user or user == principal.name:
        return Target("user", principal.name)
    if not principal.can(MANAGE):
        raise Forbidden("Acting on another identity's keys needs the rbac:manage permission.",
                        {"permission": MANAGE})
    if find_identity(user) is None:
        raise ValidationError("The request is not valid.", {"user": [f"{user!r} does not exist."]})
    return Target("user", user)


def check_reach(principal: Principal, target: Target, name: str) -> None:
    """A run token reaches system keys in its pack's namespace only (403 for the rest), and
    user-scoped keys only when its run has a user (a sensor's has none)."""
    run = principal.run_scope
    if run is not None and target.scope == "user" and run.user is None:
        raise NotFound(f"The user key does not exist for {run.describe()}.")
    if run is not None and target.scope == "system" and not run.holds(name):
        raise Forbidden(f"The token of {run.describe()} reaches the system keys of pack {run.pack!r} only "
                        f"(names starting '{run.pack}:' or '{run.pack}.') and its user's own keys.",
                        {"name": [f"not in pack {run.pack!r}"]})


def check_name(name: str) -> None:
    problems = key_name_problems(name)
    if problems:
        raise ValidationError("The key name is not valid.", {"name": problems})


def _live() -> Any:
    return or_(Key.expires_at.is_(None), Key.expires_at > utcnow())


def _identity(name: str, scope: str, owner: str | None) -> Select:
    owner_clause = Key.owner.is_(None) if owner is None else Key.owner == owner
    return select(Key).where(Key.scope == scope, owner_clause, Key.name == name)


def find_key(name: str, scope: str, owner: str | None) -> Key | None:
    """The key, or None when it does not exist or has expired."""
    if key_name_problems(name):
        return None
    return db.session.scalar(_identity(name, scope, owner).where(_live()))


def key_value(key: Key) -> str | None:
    """The key's value; a secret's is read from Vault (VaultUnavailable when Vault is down)."""
    if not key.secret:
        return key.value
    stored = vault.read_secret(key.vault_path) if key.vault_path else None
    return (stored or {}).get(VALUE_FIELD)


def get_key(target: Target, name: str) -> Key:
    check_name(name)
    key = find_key(name, target.scope, target.owner)
    if key is None:
        # Another identity's key is as absent as a missing one.
        raise NotFound(f"The {target.describe(name)} does not exist.")
    return key


def decrypt(principal: Principal, key: Key) -> Key:
    """Attach the secret value for the answer (as ``key.decrypted``) and audit who read it.

    A system secret needs keys:decrypt; a user-scoped one's owner needs nothing more."""
    if key.secret:
        if not (key.scope == "user" and key.owner == principal.name) and not principal.can(DECRYPT):
            raise Forbidden(f"Reading a secret value needs the {DECRYPT} permission.", {"permission": DECRYPT})
        key.decrypted = key_value(key)  # type: ignore[attr-defined]
        # Who read which key; never the value.
        run = principal.run_scope
        audit.record_audit(DECRYPT, "keys", key.name, status_code=200,
                           details={"scope": key.scope, "user": key.owner, **({"run": run.describe()} if run else {})})
    return key


def visible_keys(target_owner: str, args: dict[str, Any], run: RunScope | None = None) -> Select:
    """System keys and ``target_owner``'s user-scoped keys (or one scope), live only, by name;
    for a run token, only the system keys in its pack's namespace."""
    system = (Key.scope == "system") & Key.owner.is_(None)
    user = (Key.scope == "user") & (Key.owner == target_owner)
    if run is not None:
        system &= Key.name.startswith(f"{run.pack}:", autoescape=True) | Key.name.startswith(f"{run.pack}.",
                                                                                           autoescape=True)
        user = user if run.user is not None else false()
    scope = args.get("scope")
    query = select(Key).where(system if scope == "system" else user if scope == "user" else or_(system, user))
    if args.get("prefix"):
        query = query.where(Key.name.startswith(args["prefix"], autoescape=True))
    return query.where(_live()).order_by(Key.name, Key.scope)


def _expires_at(ttl: int | None):
    return utcnow() + timedelta(seconds=ttl) if ttl else None


def _locked_row(target: Target, name: str) -> Key | None:
    """The row, expired or not, locked for this transaction (a concurrent writer waits)."""
    return db.session.scalar(_identity(name, target.scope, target.owner).with_for_update())


def create_key(target: Target, name: str, data: dict[str, Any]) -> Key:
    """POST: a new key; 409 when a live one of that name exists in that scope."""
    check_name(name)
    existing = _locked_row(target, name)
    if existing is not None and not _expired(existing):
        raise Conflict(f"The {target.describe(name)} already exists; PUT replaces it.", {"name": ["exists"]})
    return _store(target, name, data, existing)


def put_key(principal: Principal, target: Target, name: str, data: dict[str, Any]) -> tuple[Key, bool]:
    """PUT: create or replace; returns (key, created). Creating also needs keys:create."""
    check_name(name)
    existing = _locked_row(target, name)
    live = existing is not None and not _expired(existing)
    if not live and not principal.can("keys:create"):
        raise Forbidden("Creating a key needs the keys:create permission.", {"permission": "keys:create"})
    return _store(target, name, data, existing), not live


def _expired(key: Key) -> bool:
    return key.expires_at is not None and key.expires_at <= utcnow()


def _store(target: Target, name: str, data: dict[str, Any], row: Key | None) -> Key:
    """Write the row (flushed first), then the secret; see the module docstring."""
    was_secret = row is not None and row.secret and row.vault_path is not None
    old_path = row.vault_path if was_secret else None
    # An expired row is replaced wholesale: its old secret must not come back on rollback.
    replacing_live = row is not None and not _expired(row)
    if row is None:
        row = Key(name=name, scope=target.scope, owner=target.owner)
        db.session.add(row)
    path = key_vault_path(target.scope, target.owner, name)
    row.secret = bool(data.get("secret"))
    row.value = None if row.secret else data["value"]
    row.vault_path = path if row.secret else None
    row.description = data.get("description") or ""
    row.expires_at = _expires_at(data.get("ttl"))
    db.session.flush()
    if row.secret:
        previous = vault.read_secret(path) if was_secret and replacing_live else None
        # Registered before the write: a write that timed out may still have been stored.
        if previous is not None:
            unit_of_work.on_rollback(vault.write_secret, path, previous)
        else:
            unit_of_work.on_rollback(vault.delete_secret, path)
        vault.write_secret(path, {VALUE_FIELD: data["value"]})
    elif old_path:
        vault.ensure_available(old_path)  # so that the after-commit delete can happen
        unit_of_work.after_commit(forget_secret, old_path)
    db.session.refresh(row)
    return row


def delete_key(key: Key) -> None:
    """Delete the row now, its secret once that is committed."""
    if key.secret and key.vault_path:
        vault.ensure_available(key.vault_path)  # refuse (503) rather than leave an orphan
        unit_of_work.after_commit(forget_secret, key.vault_path)
    db.session.delete(key)
    db.session.flush()


def forget_secret(path: str) -> None:
    """After commit: delete the secret unless a row points at it again (re-created meanwhile)."""
    if db.session.scalar(select(Key.id).where(Key.vault_path == path).limit(1)) is None:
        vault.delete_secret(path)


def purge_batch(batch: int = PURGE_BATCH) -> int:
    """Delete one batch of expired keys (flush only; the caller commits).

    Their secrets go first, under the row lock: an expired row is invisible anyway, while a
    secret deleted after the commit could be a re-created key's new one."""
    rows = list(db.session.scalars(
        select(Key).where(Key.expires_at <= utcnow()).order_by(Key.expires_at).limit(batch)
        .with_for_update(skip_locked=True)))
    for key in rows:
        if key.secret and key.vault_path:
            vault.delete_secret(key.vault_path)
    if rows:
        db.session.execute(delete(Key).where(Key.id.in_([key.id for key in rows])))
    return len(rows)
