"""A webhook post fires a rule whose execution runs on the real worker."""

from __future__ import annotations

from tests.worker import wait_for, wait_until_done

TOKEN = "e2e-deploy-token"


def test_a_webhook_post_runs_the_rules_action(worker_api, core_pack):
    created = worker_api.post("/api/v1/packs", json={
        "name": "hooks", "config_schema": {"deploy_token": {"type": "string", "secret": True}},
        "config": {"deploy_token": TOKEN}})
    assert created.status_code == 201, created.json
    rule = worker_api.post("/api/v1/rules", json={
        "pack": "hooks", "name": "on_deploy", "trigger": "core.webhook", "action": "core.local",
        "trigger_parameters": {"url": "deploy", "auth": "token", "secret_key": "deploy_token"},
        "criteria": {"trigger.body.env": {"type": "equals", "pattern": "prod"}},
        "action_parameters": {"cmd": "echo deployed={{ trigger.body.version }}"}})
    assert rule.status_code == 201, rule.json
    refused = worker_api.as_headers({}).post("/api/v1/webhooks/deploy", json={"env": "prod", "version": "1.4.2"})
    assert refused.status_code == 401
    answer = worker_api.as_headers({"X-Webhook-Token": TOKEN}).post(
        "/api/v1/webhooks/deploy", json={"env": "prod", "version": "1.4.2"})
    assert answer.status_code == 202, answer.json
    executions = wait_for(lambda: worker_api.get("/api/v1/executions").json)
    done = wait_until_done(worker_api, executions[0]["id"])
    assert done["status"] == "succeeded", done
    assert "deployed=1.4.2" in str(done["result"])
