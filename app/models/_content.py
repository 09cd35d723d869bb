"""Columns shared by everything that lives in a pack and has a ``<pack>.<name>`` ref."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column


class PackContentMixin:
    name: Mapped[str] = mapped_column(String(128))
    ref: Mapped[str] = mapped_column(String(257), unique=True)
    pack_name: Mapped[str] = mapped_column(String(128), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[Any]] = mapped_column(default=list)
    # Whether the row came from a pack directory (re-registering prunes those) or the API.
    source_file: Mapped[str | None] = mapped_column(Text)

    @declared_attr
    def pack_id(cls) -> Mapped[int]:  # noqa: N805
        return mapped_column(BigInteger, ForeignKey("packs.id", ondelete="CASCADE"), index=True)
