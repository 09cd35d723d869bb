"""Fixtures for the content API tests: row counts and the content factories missing elsewhere."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import func, select

_counter = itertools.count(1)


@pytest.fixture
def rows(db_session):
    """rows(Model) -> how many rows the table holds now (to prove a failure wrote nothing)."""

    def count(model: type) -> int:
        db_session.expire_all()
        return db_session.scalar(select(func.count()).select_from(model))

    return count


@pytest.fixture
def create_sensor(db_session, create_pack):
    from app.models import Sensor
    from app.services.packs import find_pack

    def create(ref: str | None = None, **fields: Any) -> Sensor:
        pack_name, _, name = (ref or f"spack{next(_counter)}.sensor{next(_counter)}").partition(".")
        pack = find_pack(pack_name) or create_pack(pack_name)
        fields = {"class_name": "Poller", "entry_point": "sensors/poller.py", **fields}
        sensor = Sensor(pack_id=pack.id, pack_name=pack.name, name=name, ref=f"{pack.name}.{name}", **fields)
        db_session.add(sensor)
        db_session.commit()
        return sensor

    return create


@pytest.fixture
def scoped_client(app, db_session, create_identity, token_for):
    """scoped_client({"rules:create": "acme", "rules:view": None}) -> client with just those grants."""
    from app.models import PermissionGrant, Role
    from tests.factories import ApiClient

    def make(grants: dict[str, str | None] | list[tuple[str, str | None]]) -> ApiClient:
        pairs = grants.items() if isinstance(grants, dict) else grants
        role = Role(name=f"scoped{next(_counter)}",
                    grants=[PermissionGrant(permission=p, pack=pack) for p, pack in pairs])
        db_session.add(role)
        db_session.commit()
        identity = create_identity(roles=[role.name])
        return ApiClient(app.test_client(), token_for(identity))

    return make
