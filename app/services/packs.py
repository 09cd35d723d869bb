"""Packs: lookup and the checks other content services share."""

from __future__ import annotations

from sqlalchemy import select

from app.db import db
from app.errors import NotFound
from app.models import Pack


def get_pack(name: str) -> Pack:
    pack = db.session.scalar(select(Pack).where(Pack.name == name))
    if pack is None:
        raise NotFound(f"Pack {name!r} does not exist.")
    return pack


def find_pack(name: str) -> Pack | None:
    return db.session.scalar(select(Pack).where(Pack.name == name))
