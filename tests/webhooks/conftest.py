"""Webhook fixtures: the real core pack, a pack holding a secret, rules declaring webhooks."""

from __future__ import annotations

import hashlib
import hmac
import itertools

import pytest

from tests.factories import ApiClient

SECRET = "It's a Secret to Everybody"
TOKEN = "deploy-token-0123456789"
_names = itertools.count(1)


def github_signature(secret: str, body: bytes) -> str:
    """What GitHub sends in X-Hub-Signature-256 (its documentation's recipe)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture(autouse=True)
def no_webhook_counters(app):
    """Rate-limit windows and delivery ids live in Redis: none carried over between tests."""
    from app.extensions import redis_client
    from app.services.webhooks import REDIS_PREFIX

    with app.app_context():
        client = redis_client()
        for key in client.scan_iter(f"{REDIS_PREFIX}:*"):
            client.delete(key)


@pytest.fixture
def core(app, db_session):
    """The core pack from its YAML (core.webhook with its real schema), in the test's transaction."""
    from app.services.pack_loader import register_pack

    with app.app_context():
        register_pack("core")
        db_session.commit()


@pytest.fixture
def hooks_pack(core, create_pack, create_action):
    """Pack ``hooks``: a secret config value for webhooks to reference, and an action to run."""
    create_pack("hooks", config_schema={"github_secret": {"type": "string", "secret": True},
                                        "deploy_token": {"type": "string", "secret": True},
                                        "region": {"type": "string"}},
                config={"github_secret": SECRET, "deploy_token": TOKEN, "region": "eu"})
    create_action("hooks.run")
    return "hooks"


@pytest.fixture
def declare(api, hooks_pack):
    """declare("deploy", auth="signature", secret_key="github_secret") -> the rule (201 asserted)."""

    def make(url: str, pack: str = "hooks", expect: int = 201, enabled: bool = True, **parameters):
        answer = api.post("/api/v1/rules", json={
            "pack": pack, "name": f"on_{next(_names)}", "trigger": "core.webhook", "action": "hooks.run",
            "enabled": enabled,
            "trigger_parameters": {"url": url, **parameters}})
        assert answer.status_code == expect, answer.json
        return answer.json

    return make


@pytest.fixture
def caller_with(app, db_session, create_identity, token_for):
    """caller_with([("webhooks:post", "hooks")]) -> ApiClient (JWT) holding exactly those grants."""
    from app.services.rbac import create_role

    def make(grants) -> ApiClient:
        roles = []
        if grants:
            role = create_role(f"role{next(_names)}", "", [{"permission": p, "pack": pack} for p, pack in grants])
            db_session.commit()
            roles = [role.name]
        return ApiClient(app.test_client(), token_for(create_identity(roles=roles)))

    return make
