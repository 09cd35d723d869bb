"""``kv`` / ``st2kv`` in templates, with a real worker and OpenBao: looked up when the
execution runs, as its user; a secret only through ``| decrypt_kv`` with ``keys:decrypt``,
and then masked wherever the execution is shown."""

from __future__ import annotations

import uuid

import pytest

from tests.rules.conftest import deploy_setup, make_rule, post_event, wait_processed  # noqa: F401 - fixtures
from tests.worker import wait_for, wait_until_done

TOKEN = "tok-" + uuid.uuid4().hex  # the planted secret


@pytest.fixture
def stored(worker_api):
    """greeting (plain) and api_token (secret) in the system scope."""
    names = {"greeting": f"greeting_{uuid.uuid4().hex[:8]}", "token": f"api_token_{uuid.uuid4().hex[:8]}"}
    assert worker_api.post("/api/v1/keys", json={"name": names["greeting"], "value": "hello"}).status_code == 201
    assert worker_api.post("/api/v1/keys", json={"name": names["token"], "value": TOKEN,
                                                 "secret": True}).status_code == 201
    yield names
    for name in names.values():
        worker_api.delete(f"/api/v1/keys/{name}")


def run(api, ref: str, **parameters) -> dict:
    created = api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": parameters})
    assert created.status_code == 201, created.get_json()
    return wait_until_done(api, created.get_json()["id"])


def lines(api, execution_id: int) -> list[str]:
    return [line["line"] for line in api.get(f"/api/v1/executions/{execution_id}/logs").get_json()]


def test_a_parameter_default_reads_a_plain_key(worker_api, make_action, stored):
    ref = make_action("kvt.hello", "local-shell-cmd",
                      parameters={"cmd": {"default": f"echo {{{{ st2kv.system.{stored['greeting']} }}}} world"}})

    done = run(worker_api, ref)

    assert done["status"] == "succeeded", done
    assert done["result"]["stdout"] == "hello world"


def test_a_decrypted_secret_runs_and_is_masked_everywhere_it_is_shown(worker_api, make_action, stored):
    ref = make_action("kvt.call", "local-shell-cmd", parameters={
        "cmd": {"default": f"echo token={{{{ kv.system.{stored['token']} | decrypt_kv }}}}"}})

    done = run(worker_api, ref)

    assert done["status"] == "succeeded", done
    assert done["result"]["stdout"] == "token=********"
    assert TOKEN not in str(worker_api.get(f"/api/v1/executions/{done['id']}").get_json())
    assert lines(worker_api, done["id"]) == ["token=********"]


def test_a_secret_without_decrypt_kv_or_without_the_permission_is_refused(operator_api, worker_api, make_action,
                                                                         stored):
    bare = make_action("kvt.bare", "local-shell-cmd",
                       parameters={"cmd": {"default": f"echo {{{{ st2kv.system.{stored['token']} }}}}"}})
    decrypting = make_action("kvt.decrypting", "local-shell-cmd", parameters={
        "cmd": {"default": f"echo {{{{ st2kv.system.{stored['token']} | decrypt_kv }}}}"}})

    no_filter = run(worker_api, bare)
    # The built-in operator role may run actions but not decrypt keys.
    no_permission = run(operator_api, decrypting)

    assert no_filter["status"] == "failed" and "| decrypt_kv" in no_filter["error"]
    assert no_permission["status"] == "failed" and "keys:decrypt" in no_permission["error"]
    for done in (no_filter, no_permission):
        assert TOKEN not in str(done) and lines(worker_api, done["id"]) == []


def test_a_missing_key_fails_the_execution_naming_it(worker_api, make_action):
    ref = make_action("kvt.missing", "local-shell-cmd",
                      parameters={"cmd": {"default": "echo {{ kv.system.no_such_key_here }}"}})

    done = run(worker_api, ref)

    assert done["status"] == "failed"
    assert "'system.no_such_key_here' does not exist" in done["error"]


def test_values_given_to_a_manual_execution_stay_data(worker_api, make_action, stored):
    ref = make_action("kvt.given", "local-shell-cmd", parameters={"cmd": {"type": "string"}})

    done = run(worker_api, ref, cmd=f"echo '{{{{ kv.system.{stored['token']} | decrypt_kv }}}}'")

    assert done["status"] == "succeeded"
    assert done["result"]["stdout"] == f"{{{{ kv.system.{stored['token']} | decrypt_kv }}}}"


def test_a_rule_sends_a_decrypted_secret_masked(deploy_setup, stored):  # noqa: F811 - fixture
    api = deploy_setup
    make_rule(api, "with_token", action_parameters={
        "cmd": f"echo {{{{ trigger.version }}}} {{{{ st2kv.system.{stored['token']} | decrypt_kv }}}}"})

    event_id = post_event(api, {"env": "prod", "version": "7"})

    [enforcement] = wait_processed(api, event_id)["enforcements"]
    execution_id = wait_for(lambda: api.get(f"/api/v1/enforcements/{enforcement['id']}").json.get("execution"))["id"]
    done = wait_until_done(api, execution_id)
    assert done["status"] == "succeeded", done
    assert done["result"]["stdout"] == "7 ********"
    assert TOKEN not in str(done) and lines(api, execution_id) == ["7 ********"]
