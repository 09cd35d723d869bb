from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, IdMixin, TimestampMixin, utcnow


class Identity(IdMixin, TimestampMixin, Base):
    """A person (password login) or a service account (API keys only)."""

    __tablename__ = "identities"

    name: Mapped[str] = mapped_column(String(255), unique=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16), default="user")  # user | service
    password_hash: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on disable/password change/logout-all: tokens issued before it stop working.
    tokens_valid_after: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]

    roles: Mapped[list[Role]] = relationship(
        secondary="role_assignments", lazy="selectin", order_by="Role.name", viewonly=True
    )


class Role(IdMixin, TimestampMixin, Base):
    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)

    grants: Mapped[list[PermissionGrant]] = relationship(
        back_populates="role", cascade="all, delete-orphan", lazy="selectin",
        order_by="PermissionGrant.permission",
    )


class PermissionGrant(IdMixin, Base):
    """``permission`` (``<resource>:<verb>``) granted to a role, on every pack or just ``pack``."""

    __tablename__ = "permission_grants"
    __table_args__ = (
        UniqueConstraint("role_id", "permission", "pack", postgresql_nulls_not_distinct=True),
    )

    role_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("roles.id", ondelete="CASCADE"), index=True)
    permission: Mapped[str] = mapped_column(String(64))
    pack: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)

    role: Mapped[Role] = relationship(back_populates="grants")


class RoleAssignment(IdMixin, Base):
    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("identity_id", "role_id"),)

    identity_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    role_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("roles.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)


class ApiKey(IdMixin, Base):
    """A machine credential. Only a hash of the secret is stored; ``prefix`` finds the row."""

    __tablename__ = "api_keys"

    identity_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255), default="")
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(Text)
    # None: the owner's permissions; otherwise a narrower list of permission names.
    permissions: Mapped[list[Any] | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    identity: Mapped[Identity] = relationship(lazy="joined")
