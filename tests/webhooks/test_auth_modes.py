"""Each way a webhook's caller proves itself, and what is refused."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from app.models import Event, WebhookRequest
from tests.api.helpers import assert_error
from tests.webhooks.conftest import SECRET, TOKEN, github_signature

PUSH = json.dumps({"ref": "refs/heads/main", "after": "abc123"}).encode()


def events(db_session) -> list[Event]:
    return list(db_session.scalars(select(Event).order_by(Event.id)))


def test_a_github_signature_over_the_raw_body_is_accepted(anonymous, declare, db_session):
    declare("github/push", auth="signature", secret_key="github_secret")
    answer = anonymous.post("/api/v1/webhooks/github/push", data=PUSH, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": github_signature(SECRET, PUSH),
        "X-GitHub-Event": "push"})
    assert answer.status_code == 202, answer.json
    [event] = events(db_session)
    assert answer.json == {"event_id": event.id, "url": "github/push", "replayed": False}
    assert event.trigger_ref == "core.webhook" and event.source == "webhook:github/push"
    # Its rules ran in the request (this url's rule has no criteria): processed, one enforcement.
    assert event.status == "processed"
    assert event.payload["body"] == {"ref": "refs/heads/main", "after": "abc123"}
    assert event.payload["headers"]["X-Github-Event"] == "push"
    assert "X-Hub-Signature-256" not in event.payload["headers"]


def test_a_wrong_or_missing_signature_is_refused_and_creates_nothing(anonymous, declare, db_session):
    declare("github/push", auth="signature", secret_key="github_secret")
    tampered = PUSH.replace(b"main", b"evil")
    for headers in ({"X-Hub-Signature-256": github_signature(SECRET, PUSH)},  # signs another body
                    {"X-Hub-Signature-256": github_signature("not the secret", PUSH)},
                    {"X-Hub-Signature-256": "sha256=" + "0" * 64},
                    {"X-Hub-Signature-256": "sha256=\u00e9"},
                    {}):
        answer = anonymous.post("/api/v1/webhooks/github/push", data=tampered,
                                headers={"Content-Type": "application/json", **headers})
        assert_error(answer, 401)
    assert events(db_session) == []
    outcomes = db_session.scalars(select(WebhookRequest.outcome)).all()
    assert outcomes == ["unauthorized"] * 5


def test_patchbay_credentials_do_not_replace_a_declared_signature(api, declare, db_session):
    declare("github/push", auth="signature", secret_key="github_secret")
    assert_error(api.post("/api/v1/webhooks/github/push", json={"x": 1}), 401)
    assert events(db_session) == []


def test_a_token_header_is_accepted_and_not_stored(anonymous, declare, db_session):
    declare("deploy", auth="token", secret_key="deploy_token", token_header="X-Deploy-Token")
    assert_error(anonymous.post("/api/v1/webhooks/deploy", json={"v": 1}, headers={"X-Deploy-Token": "guess"}), 401)
    assert_error(anonymous.post("/api/v1/webhooks/deploy", json={"v": 1}), 401)
    assert events(db_session) == []
    answer = anonymous.post("/api/v1/webhooks/deploy", json={"v": 2}, headers={"x-deploy-token": TOKEN})
    assert answer.status_code == 202, answer.json
    [event] = events(db_session)
    assert event.payload["body"] == {"v": 2}
    assert TOKEN not in json.dumps(event.payload)


def test_a_webhook_declaring_no_mode_needs_webhooks_post_on_its_pack(anonymous, declare, caller_with, db_session):
    declare("deploy")
    assert_error(anonymous.post("/api/v1/webhooks/deploy", json={"v": 1}), 401)
    assert_error(caller_with([("rules:view", None)]).post("/api/v1/webhooks/deploy", json={"v": 1}), 403, "permission")
    assert_error(caller_with([("webhooks:post", "other")]).post("/api/v1/webhooks/deploy", json={"v": 1}), 403)
    assert events(db_session) == []
    answer = caller_with([("webhooks:post", "hooks")]).post("/api/v1/webhooks/deploy", json={"v": 1})
    assert answer.status_code == 202, answer.json
    [event] = events(db_session)
    assert "Authorization" not in event.payload["headers"]
    log = db_session.scalars(select(WebhookRequest).order_by(WebhookRequest.id)).all()
    assert [row.outcome for row in log] == ["unauthorized", "forbidden", "forbidden", "accepted"]
    assert log[-1].principal is not None and log[-1].event_id == event.id


def test_an_api_key_with_webhooks_post_is_accepted_and_not_stored(anonymous, declare, caller_with, db_session):
    declare("deploy")
    owner = caller_with([("webhooks:post", "hooks"), ("apikeys:create", None)])
    key = owner.post("/api/v1/apikeys", json={"name": "ci"}).json["key"]
    answer = anonymous.post("/api/v1/webhooks/deploy", data="deployed 1.2", headers={
        "X-API-Key": key, "Content-Type": "text/plain", "Cookie": "session=1"})
    assert answer.status_code == 202, answer.json
    [event] = events(db_session)
    assert event.payload["body"] == "deployed 1.2"
    stored = {name.lower() for name in event.payload["headers"]}
    assert not stored & {"x-api-key", "authorization", "cookie"}
    assert key not in json.dumps(event.payload)
    assert_error(anonymous.post("/api/v1/webhooks/deploy", json={}, headers={"X-API-Key": "pbk_nope_nope"}), 401)


def test_a_webhook_whose_secret_is_not_set_refuses_everyone(anonymous, declare, api, db_session):
    declare("github/push", auth="signature", secret_key="github_secret")
    assert api.patch("/api/v1/packs/hooks", json={"config": {"region": "eu"}}).status_code == 200
    for secret in (SECRET, ""):
        answer = anonymous.post("/api/v1/webhooks/github/push", data=PUSH, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": github_signature(secret, PUSH)})
        assert_error(answer, 401)
    assert db_session.scalar(select(func.count()).select_from(Event)) == 0
