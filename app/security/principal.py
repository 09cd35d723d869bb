"""Who is calling, and what they may do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from app.db import db
from app.errors import Unauthorized
from app.models import Identity


@dataclass(frozen=True)
class KeyInfo:
    """The API key a call came with, as authentication read it (never its hash)."""

    id: int
    prefix: str
    # None: the owner's permissions; otherwise the permission names the key is narrowed to.
    permissions: tuple[str, ...] | None
    expires_at: datetime | None = None
    revoked: bool = False
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class RunScope:
    """What a run token (``X-Auth-Token``) speaks for: one running python action or sensor poll.

    It reaches the keys API only: system keys in its pack's namespace (names starting
    ``<pack>:`` or ``<pack>.``) and, when the run has a user, that user's own keys.
    """

    pack: str
    user: str | None
    execution_id: int | None = None
    sensor_ref: str | None = None

    def holds(self, name: str) -> bool:
        """Whether the system key ``name`` is in the pack's namespace."""
        return name.startswith((f"{self.pack}:", f"{self.pack}."))

    def describe(self) -> str:
        return f"execution {self.execution_id}" if self.execution_id is not None else f"sensor {self.sensor_ref}"


@dataclass
class Principal:
    identity_id: int
    name: str
    # (permission, pack or None for every pack)
    grants: frozenset[tuple[str, str | None]]
    roles: tuple[str, ...] = ()
    api_key: KeyInfo | None = None
    token_jti: str | None = None
    # The verified claims of the access token used (logout revokes it until its ``exp``).
    token_claims: dict | None = None
    # Set when the call came with a run token: what that run may reach (app/services/keys.py).
    run_scope: RunScope | None = None
    _identity: Identity | None = field(default=None, repr=False)

    @property
    def identity(self) -> Identity:
        """The identity's row, loaded on first use (most calls need only its id and name)."""
        if self._identity is None:
            identity = db.session.get(Identity, self.identity_id)
            if identity is None:  # deleted since this request authenticated
                raise Unauthorized("The identity no longer exists.")
            self._identity = identity
        return self._identity

    def can(self, permission: str, pack: str | None = None) -> bool:
        """True if granted everywhere, or (with ``pack``) on that pack."""
        if (permission, None) in self.grants:
            return True
        return pack is not None and (permission, pack) in self.grants

    def can_any(self, permission: str) -> bool:
        return any(p == permission for p, _ in self.grants)

    def packs_for(self, permission: str) -> set[str] | None:
        """None when the permission covers every pack; otherwise the packs it covers."""
        if (permission, None) in self.grants:
            return None
        return {pack for p, pack in self.grants if p == permission and pack is not None}

    def effective_permissions(self) -> list[dict]:
        return [
            {"permission": p, "pack": pack}
            for p, pack in sorted(self.grants, key=lambda g: (g[0], g[1] or ""))
        ]
