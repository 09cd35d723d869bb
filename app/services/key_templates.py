"""``kv`` and ``st2kv`` in templates: the datastore, read for the identity a run is for.

``{{ kv.system.<name> }}`` / ``{{ kv.user.<name> }}`` (StackStorm's ``st2kv`` is the same
object) look a key up when the template is rendered — in the worker, when the execution
runs — as the execution's user (its caller, or the rule's owner). A plain key gives its
value. A secret key gives a ``KvSecret`` that renders only through ``| decrypt_kv``, and only
if that identity holds ``keys:decrypt`` (or owns the user-scoped key): a rule's author cannot
send a secret anywhere they could not read it themselves. Each decrypted value is reported
to ``on_secret`` so the execution masks it like a secret parameter (its row, log, result).

In ``preview`` (a rule checked when an event matches it, before anything runs) secrets are
not read: ``decrypt_kv`` gives ``********``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from app.db import db
from app.engine.parameters import MASK
from app.engine.templates import KvSecret
from app.models import Identity
from app.security.authenticate import load_grants
from app.services import keys

DECRYPT = "keys:decrypt"


class KeyLookupError(Exception):
    """A template named a datastore key that cannot be read."""


class Datastore:
    """The ``kv`` of one rendering."""

    def __init__(self, user: str | None, on_secret: Callable[[str], None] = lambda _value: None, *,
                 preview: bool = False) -> None:
        self._user = user
        self._on_secret = on_secret
        self._preview = preview
        self._may_decrypt: bool | None = None
        self.system = _Scope(self, "system", None)
        self.user = _Scope(self, "user", user)

    def lookup(self, scope: str, name: str, decrypt: bool) -> Any:
        """A workflow's ``st2kv('system.name', decrypt=true)``: the value; a secret only with
        ``decrypt`` (and the permission it needs), else refused rather than shown encrypted."""
        value = (self.system if scope == "system" else self.user)[name]
        if isinstance(value, KvSecret):
            if not decrypt:
                raise KeyLookupError(f"datastore key {value.name!r} is secret: read it with decrypt=true")
            return value.decrypted()
        return value

    def _allowed(self, key: Any) -> bool:
        if key.scope == "user" and key.owner == self._user:
            return True  # one's own key
        if self._may_decrypt is None:
            identity_id = db.session.scalar(select(Identity.id).where(Identity.name == self._user,
                                                                      Identity.enabled.is_(True))) \
                if self._user else None
            grants = load_grants(identity_id)[0] if identity_id is not None else frozenset()
            self._may_decrypt = (DECRYPT, None) in grants
        return self._may_decrypt

    def _reveal(self, key: Any, shown_name: str) -> str:
        if self._preview:
            return MASK
        if not self._allowed(key):
            raise PermissionError(f"{self._user or 'this execution'} may not decrypt datastore key {shown_name!r} "
                                  f"({DECRYPT} is needed)")
        value = keys.key_value(key) or ""
        self._on_secret(value)
        return value


class _Scope:
    def __init__(self, store: Datastore, scope: str, owner: str | None) -> None:
        self._store = store
        self._scope = scope
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> Any:
        shown = f"{self._scope}.{name}"
        if self._scope == "user" and not self._owner:
            raise KeyLookupError(f"datastore key {shown!r}: this execution has no user")
        key = keys.find_key(name, self._scope, self._owner) if isinstance(name, str) else None
        if key is None:
            raise KeyLookupError(f"datastore key {shown!r} does not exist (or has expired)")
        if not key.secret:
            return key.value
        return KvSecret(shown, lambda: self._store._reveal(key, shown))
