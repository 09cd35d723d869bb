"""Who is calling, and what they may do."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.models import ApiKey, Identity


@dataclass
class Principal:
    identity: Identity
    # (permission, pack or None for every pack)
    grants: frozenset[tuple[str, str | None]]
    roles: tuple[str, ...] = ()
    api_key: ApiKey | None = None
    token_jti: str | None = None
    # The verified claims of the access token used (logout revokes it until its ``exp``).
    token_claims: dict | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.identity.name

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
