"""Per-webhook limits, replayed deliveries, the request log, and rules that must agree."""

from __future__ import annotations

import json

from sqlalchemy import select

from app.models import Event, WebhookRequest
from tests.api.helpers import assert_error
from tests.factories import pagination
from tests.webhooks.conftest import SECRET, TOKEN, github_signature

TOKEN_HEADERS = {"X-Webhook-Token": TOKEN}


def token_hook(declare, url: str = "deploy", **parameters) -> None:
    declare(url, auth="token", secret_key="deploy_token", **parameters)


def event_count(db_session) -> int:
    return len(db_session.scalars(select(Event.id)).all())


def test_an_unknown_url_is_404_and_nothing_is_stored(anonymous, declare, db_session):
    token_hook(declare)
    declare("disabled", enabled=False, auth="token", secret_key="deploy_token")
    for url in ("/api/v1/webhooks/nope", "/api/v1/webhooks/deploy/more", "/api/v1/webhooks/disabled"):
        assert_error(anonymous.post(url, json={}, headers=TOKEN_HEADERS), 404)
    assert event_count(db_session) == 0
    assert db_session.scalars(select(WebhookRequest)).all() == []
    # Leading and trailing slashes name the same webhook, as in StackStorm.
    assert anonymous.post("/api/v1/webhooks/deploy/", json={}, headers=TOKEN_HEADERS).status_code == 202


def test_a_webhook_request_is_recorded_in_its_request_log_not_in_the_audit_log(anonymous, declare, db_session):
    from tests.auth.test_audit import entries_for

    token_hook(declare)
    assert anonymous.post("/api/v1/webhooks/deploy", json={}, headers={**TOKEN_HEADERS, "X-Request-ID": "hook-1"}
                          ).status_code == 202
    assert_error(anonymous.post("/api/v1/webhooks/deploy", json={},
                                headers={"X-Webhook-Token": "wrong", "X-Request-ID": "hook-2"}), 401)
    assert_error(anonymous.post("/api/v1/webhooks/nope", json={}, headers={**TOKEN_HEADERS, "X-Request-ID": "hook-3"}),
                 404)
    logged = db_session.execute(select(WebhookRequest.request_id, WebhookRequest.outcome)
                                .order_by(WebhookRequest.id)).all()
    assert [tuple(row) for row in logged] == [("hook-1", "accepted"), ("hook-2", "unauthorized")]
    # Those two are in the webhook's log (who, from where, how it ended), so the audit log and
    # its budget for unauthenticated callers are left to what nothing else records: here, the
    # call to a url no rule declares.
    assert entries_for("hook-1") == [] and entries_for("hook-2") == []
    (entry,) = entries_for("hook-3")
    assert (entry.outcome, entry.status_code, entry.actor) == ("failure", 404, None)


def test_the_body_limit_is_per_webhook(anonymous, declare, db_session):
    token_hook(declare, max_body_bytes=100)
    answer = anonymous.post("/api/v1/webhooks/deploy", json={"x": "y" * 100}, headers=TOKEN_HEADERS)
    assert "100 bytes" in assert_error(answer, 413)["message"]
    assert anonymous.post("/api/v1/webhooks/deploy", json={"x": "y"}, headers=TOKEN_HEADERS).status_code == 202
    assert event_count(db_session) == 1
    assert db_session.scalars(select(WebhookRequest.outcome).order_by(WebhookRequest.id)).all() == ["too_large", "accepted"]


def test_the_limit_cannot_exceed_the_global_one(app, declare):
    declare("deploy", expect=422, max_body_bytes=app.config["MAX_CONTENT_LENGTH"] + 1)


def test_the_cidr_allow_list_reads_the_client_address(anonymous, declare, db_session):
    token_hook(declare, allowed_cidrs=["192.0.2.0/24", "2001:db8::/32"])
    for address, status in (("192.0.2.7", 202), ("2001:db8::1", 202), ("198.51.100.1", 403), ("127.0.0.1", 403)):
        answer = anonymous.post("/api/v1/webhooks/deploy", json={}, headers=TOKEN_HEADERS,
                                environ_base={"REMOTE_ADDR": address})
        assert answer.status_code == status, (address, answer.json)
    assert event_count(db_session) == 2
    refused = db_session.scalars(select(WebhookRequest).where(WebhookRequest.outcome == "forbidden")).all()
    assert sorted(row.source_address for row in refused) == ["127.0.0.1", "198.51.100.1"]


def test_behind_a_trusted_proxy_the_forwarded_address_counts(app, declare, db_session):
    from app import create_app

    token_hook(declare, allowed_cidrs=["192.0.2.0/24"])
    proxied = create_app({"TESTING": True, "PROXY_HOPS": 1}).test_client()
    allowed = proxied.post("/api/v1/webhooks/deploy", json={}, headers={**TOKEN_HEADERS, "X-Forwarded-For": "192.0.2.9"},
                           environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert allowed.status_code == 202, allowed.json
    spoofed = proxied.post("/api/v1/webhooks/deploy", json={}, headers={**TOKEN_HEADERS,
                           "X-Forwarded-For": "192.0.2.9, 203.0.113.5"}, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert_error(spoofed, 403)


def test_the_rate_limit_answers_429_with_retry_after(anonymous, declare, db_session):
    token_hook(declare, rate_limit={"requests": 2, "per_seconds": 60})
    assert [anonymous.post("/api/v1/webhooks/deploy", json={}, headers=TOKEN_HEADERS).status_code
            for _ in range(2)] == [202, 202]
    for _ in range(3):
        refused = anonymous.post("/api/v1/webhooks/deploy", json={}, headers=TOKEN_HEADERS)
        assert_error(refused, 429)
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert event_count(db_session) == 2
    # A flood is logged once per window.
    outcomes = db_session.scalars(select(WebhookRequest.outcome).order_by(WebhookRequest.id)).all()
    assert outcomes == ["accepted", "accepted", "rate_limited"]


def test_a_replayed_github_delivery_gets_the_original_event(anonymous, declare, db_session):
    declare("github/push", auth="signature", secret_key="github_secret")
    body = b'{"zen": "Keep it logically awesome."}'
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": github_signature(SECRET, body),
               "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    first = anonymous.post("/api/v1/webhooks/github/push", data=body, headers=headers)
    again = anonymous.post("/api/v1/webhooks/github/push", data=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json == {**first.json, "replayed": True}
    assert event_count(db_session) == 1
    other = anonymous.post("/api/v1/webhooks/github/push", data=body,
                           headers={**headers, "X-GitHub-Delivery": "another"})
    assert other.json["event_id"] != first.json["event_id"]
    log = db_session.scalars(select(WebhookRequest).order_by(WebhookRequest.id)).all()
    assert [(row.outcome, row.event_id) for row in log][:2] == [("accepted", first.json["event_id"]),
                                                               ("replayed", first.json["event_id"])]


def test_a_refused_delivery_can_be_retried(anonymous, declare, db_session):
    token_hook(declare)
    headers = {**TOKEN_HEADERS, "X-GitHub-Delivery": "d-1", "Content-Type": "application/json"}
    assert_error(anonymous.post("/api/v1/webhooks/deploy", data=b"{not json", headers=headers), 400)
    assert anonymous.post("/api/v1/webhooks/deploy", data=b"{}", headers=headers).status_code == 202
    assert event_count(db_session) == 1


def test_form_and_text_bodies(anonymous, declare, db_session):
    token_hook(declare)
    form = anonymous.post("/api/v1/webhooks/deploy", data={"env": "prod", "tag": ["a", "b"]}, headers=TOKEN_HEADERS)
    text = anonymous.post("/api/v1/webhooks/deploy", data="plain words", headers={**TOKEN_HEADERS, "Content-Type": "text/plain"})
    binary = anonymous.post("/api/v1/webhooks/deploy", data=b"\xff\xfe", headers={**TOKEN_HEADERS, "Content-Type": "application/octet-stream"})
    assert form.status_code == text.status_code == 202
    assert_error(binary, 415)
    bodies = [db_session.get(Event, answer.json["event_id"]).payload["body"] for answer in (form, text)]
    assert bodies == [{"env": "prod", "tag": ["a", "b"]}, "plain words"]


def test_the_request_log_is_listed_and_filtered(anonymous, api, declare, caller_with):
    token_hook(declare)
    anonymous.post("/api/v1/webhooks/deploy", json={}, headers=TOKEN_HEADERS)
    anonymous.post("/api/v1/webhooks/deploy", json={}, headers={"X-Webhook-Token": "bad"},
                   environ_base={"REMOTE_ADDR": "203.0.113.9"})
    listed = api.get("/api/v1/webhooks/requests?url=deploy")
    assert listed.status_code == 200 and pagination(listed)["total"] == 2
    newest = listed.json[0]
    assert newest["outcome"] == "unauthorized" and newest["source_address"] == "203.0.113.9"
    assert newest["event_id"] is None and newest["status_code"] == 401
    assert listed.json[1]["outcome"] == "accepted" and listed.json[1]["event_id"]
    assert [r["outcome"] for r in api.get("/api/v1/webhooks/requests?outcome=accepted").json] == ["accepted"]
    assert_error(api.get("/api/v1/webhooks/requests?outcome=maybe"), 422, "outcome")
    assert caller_with([("webhooks:view", "hooks")]).get("/api/v1/webhooks/requests").json != []
    assert caller_with([("webhooks:view", "other")]).get("/api/v1/webhooks/requests").json == []
    assert_error(caller_with([("rules:view", None)]).get("/api/v1/webhooks/requests"), 403)


def test_declared_webhooks_are_listed_without_secrets(api, declare):
    token_hook(declare, rate_limit={"requests": 5, "per_seconds": 1})
    declare("github/push", auth="signature", secret_key="github_secret")
    listed = api.get("/api/v1/webhooks").json
    assert [(hook["url"], hook["auth"]) for hook in listed] == [("deploy", "token"), ("github/push", "signature")]
    assert listed[0]["token_header"] == "X-Webhook-Token" and listed[0]["rate_limit"] == {"requests": 5, "per_seconds": 1}
    assert listed[0]["rules"] and listed[0]["packs"] == ["hooks"]
    assert TOKEN not in json.dumps(listed) and SECRET not in json.dumps(listed)


def test_rules_on_one_url_must_agree(api, declare, create_pack):
    token_hook(declare)
    token_hook(declare)  # the same declaration: a second rule on the webhook
    conflict = declare("deploy", expect=409, auth="token", secret_key="deploy_token", rate_limit={"requests": 1, "per_seconds": 1})
    assert "deploy" in conflict["errors"]["webhooks"]
    declare("deploy", expect=409)  # patchbay auth on a token webhook
    # A disabled rule may disagree; enabling it may not.
    disabled = declare("deploy", enabled=False, auth="signature", secret_key="github_secret")
    assert_error(api.post(f"/api/v1/rules/{disabled['ref']}/enable"), 409)
    assert_error(api.patch(f"/api/v1/rules/{disabled['ref']}", json={"enabled": True}), 409)
    # The secret comes from one pack's config: another pack cannot share a secret webhook.
    create_pack("team", config_schema={"deploy_token": {"type": "string", "secret": True}}, config={"deploy_token": "x"})
    declare("deploy", pack="team", expect=409, auth="token", secret_key="deploy_token")


def test_a_secret_is_referenced_never_written(declare):
    declare("deploy", expect=422, auth="token", secret_key=TOKEN)  # the text itself, not a name
    declare("deploy", expect=422, auth="token", secret_key="region")  # a config value not declared secret
    declare("deploy", expect=422, auth="signature")
    declare("deploy", expect=422, allowed_cidrs=["not-a-network"])
    declare("deploy", expect=422, unknown_setting=True)


def write_pack(root, name: str, rules: dict[str, dict]) -> None:
    import yaml

    directory = root / name
    (directory / "rules").mkdir(parents=True)
    (directory / "pack.yaml").write_text(yaml.safe_dump({"name": name, "version": "1.0.0", "description": "hooks"}))
    (directory / "config.schema.yaml").write_text(yaml.safe_dump({"deploy_token": {"type": "string", "secret": True}}))
    for rule_name, parameters in rules.items():
        (directory / "rules" / f"{rule_name}.yaml").write_text(yaml.safe_dump({
            "name": rule_name, "trigger": {"type": "core.st2.webhook", "parameters": parameters},
            "action": {"ref": "core.noop"}}))


def test_pack_registration_refuses_rules_that_disagree(app, api, core, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "PACKS_PATH", str(tmp_path))
    write_pack(tmp_path, "agreeing", {"a": {"url": "ship", "auth": "token", "secret_key": "deploy_token"},
                                      "b": {"url": "/ship/", "auth": "token", "secret_key": "deploy_token"}})
    write_pack(tmp_path, "disagreeing", {"a": {"url": "ship"}})
    assert api.post("/api/v1/packs/register", json={"packs": ["agreeing"]}).status_code == 200
    assert [hook["rules"] for hook in api.get("/api/v1/webhooks").json] == [["agreeing.a", "agreeing.b"]]
    answer = api.post("/api/v1/packs/register", json={"packs": ["disagreeing"]})
    assert "ship" in assert_error(answer, 409)["errors"]["webhooks"]
    assert_error(api.get("/api/v1/packs/disagreeing"), 404)
