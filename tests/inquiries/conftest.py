"""Fixtures for the inquiry tests: pending inquiries on executions that wait, and clients
holding exactly the grants a test names."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from tests.auth.conftest import create_role  # noqa: F401 - a fixture
from tests.factories import ApiClient

APPROVAL = {"type": "object", "properties": {"approved": {"type": "boolean"}, "reason": {"type": "string"}},
            "required": ["approved"], "additionalProperties": False}
_names = itertools.count(1)


@dataclass(frozen=True)
class Asked:
    """An opened inquiry's ids (rows do not outlive the requests that follow)."""

    id: int
    execution_id: int
    root_execution_id: int


@pytest.fixture
def open_inquiry(app, db_session, create_action):
    """open_inquiry("acme", users=[...], roles=[...], ttl=None, root_pack=None) -> Asked.

    The inquiry of a ``pending`` inquirer execution of ``<pack>.ask``; with ``root_pack`` the
    execution is a child of a workflow execution of that pack (its root).
    """
    from app.models import Action, Execution
    from app.services import inquiries, unit_of_work

    def action_of(pack: str) -> Action:
        ref = f"{pack}.ask"
        action = db_session.scalar(select(Action).where(Action.ref == ref))
        return action or create_action(ref, "inquirer")

    def execution_row(pack: str, **fields: Any) -> Execution:
        action = action_of(pack)
        execution = Execution(action_id=action.id, action_ref=action.ref, pack_name=pack, runner_type="inquirer",
                              parameters={}, context={}, **fields)
        db_session.add(execution)
        db_session.flush()
        return execution

    def make(pack: str = "acme", *, schema: dict | None = None, users: list[str] = (), roles: list[str] = (),
             ttl: int | None = None, root_pack: str | None = None, route: str = ""):
        root = execution_row(root_pack, status="running", waiting_on="children") if root_pack else None
        execution = execution_row(pack, status="pending", waiting_on="inquiry",
                                  parent_id=root.id if root else None, root_id=root.id if root else None)
        inquiry = inquiries.open_inquiry(execution, schema=APPROVAL if schema is None else schema, route=route,
                                         users=users, roles=roles, ttl_minutes=ttl)
        db_session.commit()
        asked = Asked(inquiry.id, inquiry.execution_id, inquiry.root_execution_id)
        unit_of_work.drain()
        return asked

    return make


@pytest.fixture
def person(app, create_identity, create_role, token_for):  # noqa: F811 - the fixture imported above
    """person([("inquiries:respond", "acme")], roles=["approvers"], name=None) -> (name, ApiClient)."""

    def make(grants, roles: list[str] = (), name: str | None = None) -> tuple[str, ApiClient]:
        role_names = list(roles)
        if grants:
            role_names.append(create_role(grants))
        identity = create_identity(name or f"person{next(_names)}", roles=role_names)
        return identity.name, ApiClient(app.test_client(), token_for(identity))

    return make


def answer(client: ApiClient, inquiry_id: int, response: Any):
    return client.post(f"/api/v1/inquiries/{inquiry_id}/respond", json={"response": response})
