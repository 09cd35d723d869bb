"""Factory fixtures that read like prose: ``create_pack("acme")``, ``api.get(...)``."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

_counter = itertools.count(1)


class ApiClient:
    """The Flask test client with credentials attached (admin unless told otherwise)."""

    def __init__(self, client, headers: dict[str, str] | None = None) -> None:
        self.client = client
        self.headers = headers or {}

    def as_headers(self, headers: dict[str, str] | None) -> ApiClient:
        return ApiClient(self.client, headers or {})

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any):
        merged = {**self.headers, **(headers or {})}
        return self.client.open(url, method=method, headers=merged, **kwargs)

    def get(self, url: str, **kwargs: Any):
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any):
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any):
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any):
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any):
        return self.request("DELETE", url, **kwargs)


def pagination(response) -> dict[str, Any]:
    return json.loads(response.headers["X-Pagination"])


@pytest.fixture
def create_identity(db_session, app):
    """create_identity("alice", roles=["viewer"], password=None) -> Identity (committed)."""
    from app.models import Identity
    from app.services.rbac import assign_role, ensure_builtin_roles

    def create(name: str | None = None, roles: list[str] = (), password: str | None = None,
               enabled: bool = True, kind: str = "user") -> Identity:
        from sqlalchemy import select

        from app.models import Role

        builtin = ensure_builtin_roles()
        identity = Identity(name=name or f"user{next(_counter)}", kind=kind, enabled=enabled)
        if password is not None:
            from app.services.passwords import hash_password

            identity.password_hash = hash_password(password)
        db_session.add(identity)
        db_session.flush()
        for role_name in roles:
            role = builtin.get(role_name) or db_session.scalar(select(Role).where(Role.name == role_name))
            assign_role(identity, role)
        db_session.commit()
        return identity

    return create


@pytest.fixture
def token_for(app):
    """token_for(identity) -> {"Authorization": "Bearer ..."}."""
    from app.security.tokens import issue_tokens

    def make(identity) -> dict[str, str]:
        with app.test_request_context():
            tokens = issue_tokens(identity.id)
        return {"Authorization": f"Bearer {tokens['access_token']}"}

    return make


@pytest.fixture
def admin(create_identity):
    return create_identity("admin", roles=["admin"])


@pytest.fixture
def api(app, db_session, admin, token_for) -> ApiClient:
    """A client authenticated as an admin."""
    return ApiClient(app.test_client(), token_for(admin))


@pytest.fixture
def anonymous(app, db_session) -> ApiClient:
    return ApiClient(app.test_client())


@pytest.fixture
def client_as(app, db_session, create_identity, token_for):
    """client_as("viewer") / client_as(identity) -> ApiClient acting as that identity."""

    def make(who) -> ApiClient:
        identity = create_identity(roles=[who]) if isinstance(who, str) else who
        return ApiClient(app.test_client(), token_for(identity))

    return make


@pytest.fixture
def create_pack(db_session):
    from app.models import Pack

    def create(name: str | None = None, **fields: Any) -> Pack:
        pack = Pack(name=name or f"pack{next(_counter)}", **fields)
        db_session.add(pack)
        db_session.commit()
        return pack

    return create


@pytest.fixture
def create_action(db_session, create_pack):
    from app.services.actions import create_action as service_create

    def create(ref: str | None = None, runner_type: str = "noop", **fields: Any):
        pack_name, _, name = (ref or f"pack{next(_counter)}.action{next(_counter)}").partition(".")
        from app.services.packs import find_pack

        if find_pack(pack_name) is None:
            create_pack(pack_name)
        action = service_create({"pack_name": pack_name, "name": name, "runner_type": runner_type, **fields})
        db_session.commit()
        return action

    return create


@pytest.fixture
def create_trigger(db_session, create_pack):
    from app.models import Trigger
    from app.services.packs import find_pack

    def create(ref: str | None = None, **fields: Any) -> Trigger:
        pack_name, _, name = (ref or f"pack{next(_counter)}.trigger{next(_counter)}").partition(".")
        pack = find_pack(pack_name) or create_pack(pack_name)
        trigger = Trigger(pack_id=pack.id, pack_name=pack.name, name=name, ref=f"{pack.name}.{name}", **fields)
        db_session.add(trigger)
        db_session.commit()
        return trigger

    return create


@pytest.fixture
def create_rule(db_session, create_pack, create_action, create_trigger):
    from sqlalchemy import select

    from app.models import Action, Rule, Trigger
    from app.services.packs import find_pack

    def create(ref: str | None = None, trigger: str | None = None, action: str | None = None, **fields: Any) -> Rule:
        pack_name, _, name = (ref or f"pack{next(_counter)}.rule{next(_counter)}").partition(".")
        pack = find_pack(pack_name) or create_pack(pack_name)
        trigger_row = (db_session.scalar(select(Trigger).where(Trigger.ref == trigger)) if trigger else None) or create_trigger(trigger)
        action_row = (db_session.scalar(select(Action).where(Action.ref == action)) if action else None) or create_action(action)
        rule = Rule(pack_id=pack.id, pack_name=pack.name, name=name, ref=f"{pack.name}.{name}",
                    trigger_id=trigger_row.id, action_id=action_row.id, **fields)
        db_session.add(rule)
        db_session.commit()
        return rule

    return create
