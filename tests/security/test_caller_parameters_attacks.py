"""Attacks through what a caller sets, by an operator who executes actions and writes rules.

The attacker sends runner parameters the action never exposed (``cmd``, ``cwd``), startup
environment names that make a shell or an interpreter run a payload (``BASH_ENV``,
``PYTHONWARNINGS``, ``BASH_FUNC_x%%``, ``LD_PRELOAD``) and a ``timeout`` above the action's
cap. Each must be a 422 naming what was refused, with no execution row written and no marker
file created by the payload. A control run shows the marker would have appeared had the
payload run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.models import Execution, Rule
from tests.worker import wait_until_done

PYTHON_ACTION = (
    "from st2common.runners.base_action import Action\n\n"
    "class Hello(Action):\n"
    "    def run(self, name):\n"
    "        return {'hello': name}\n"
)




@pytest.fixture
def python_action(make_action, tmp_path):
    """attack.hello: a python action that exposes ``env`` (and nothing else of its runner)."""
    (tmp_path / "actions").mkdir()
    (tmp_path / "actions" / "hello.py").write_text(PYTHON_ACTION)
    return make_action("attack.hello", "python-script", pack_path=str(tmp_path), entry_point="hello.py",
                       parameters={"name": {"type": "string", "default": "x"}, "env": {"type": "object"}})


def executions(committed_db) -> int:
    committed_db.rollback()  # see the rows the API's requests committed
    return committed_db.scalar(select(func.count()).select_from(Execution))


def assert_refused(api, committed_db, marker: Path, ref: str, parameters: dict, name: str, *named: str) -> None:
    """422 in the one error shape naming ``name`` (and each of ``named`` in its messages);
    no execution row; the payload's marker absent."""
    before = executions(committed_db)
    response = api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": parameters})
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}
    assert name in body["message"]
    messages = " ".join(body["errors"]["parameters"][name])
    for text in named:
        assert text in messages, messages
    assert executions(committed_db) == before
    assert not marker.exists()


def test_the_marker_appears_when_a_payload_does_run(operator_api, core_pack, marker):
    """The control: core.local exposes ``cmd``, so this payload runs and leaves the marker."""
    created = operator_api.post("/api/v1/actions/core.local/execute",
                                json={"parameters": {"cmd": f"touch {marker}"}})
    assert created.status_code == 201, created.get_json()
    assert wait_until_done(operator_api, created.get_json()["id"], 60)["status"] == "succeeded"
    assert marker.exists()


@pytest.mark.parametrize(("env", "variable"), [
    ({"BASH_ENV": "{marker}.sh"}, "BASH_ENV"),
    ({"ENV": "{marker}.sh"}, "ENV"),
    ({"BASH_FUNC_true%%": "() {{ touch {marker}; }}"}, "BASH_FUNC_true%%"),
    ({"LD_PRELOAD": "{marker}.so"}, "LD_PRELOAD"),
    ({"PYTHONWARNINGS": "all:0:antigravity.x:0:0", "BROWSER": "/bin/sh -c 'touch {marker}' #%s"},
     "PYTHONWARNINGS"),
    ({"bash_env": "{marker}.sh"}, "bash_env"),
])
def test_startup_environment_through_core_local_is_refused(operator_api, committed_db, core_pack, marker,
                                                           env, variable):
    payload = Path(f"{marker}.sh")
    payload.write_text(f"touch {marker}\n")
    env = {name: value.format(marker=marker) for name, value in env.items()}

    assert_refused(operator_api, committed_db, marker, "core.local", {"cmd": "true", "env": env}, "env",
                   repr(variable), "only the action's metadata may set it")


@pytest.mark.parametrize("env", [
    {"PYTHONWARNINGS": "all:0:antigravity.x:0:0", "BROWSER": "/bin/sh -c 'touch {marker}' #%s"},
    {"PYTHONSTARTUP": "{marker}.py", "PYTHONINSPECT": "1"},
    {"PYTHONPATH": "{directory}"},
    {"LD_PRELOAD": "{marker}.so"},
    {"BASH_ENV": "{marker}.sh"},
])
def test_startup_environment_through_a_python_action_is_refused(operator_api, committed_db, python_action,
                                                                marker, env):
    # A sitecustomize.py the interpreter would import at startup from PYTHONPATH.
    (marker.parent / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    env = {name: value.format(marker=marker, directory=marker.parent) for name, value in env.items()}

    assert_refused(operator_api, committed_db, marker, python_action, {"env": env}, "env",
                   *(repr(name) for name in env if name != "BROWSER"))


def test_runner_parameters_the_action_does_not_expose_are_refused(operator_api, committed_db, make_action,
                                                                   python_action, core_pack, marker):
    hidden = make_action("attack.status", "local-shell-cmd", parameters={"service": {"type": "string"}})

    assert_refused(operator_api, committed_db, marker, hidden, {"cmd": f"touch {marker}"}, "cmd",
                   "'cmd' is a parameter of the local-shell-cmd runner that action attack.status does not expose.")
    assert_refused(operator_api, committed_db, marker, hidden, {"cwd": "/"}, "cwd", "does not expose")
    assert_refused(operator_api, committed_db, marker, hidden, {"env": {"A": "1"}}, "env", "does not expose")
    # core.echo declares cmd, but immutable: its author's command runs, never the caller's.
    assert_refused(operator_api, committed_db, marker, "core.echo",
                   {"message": "hi", "cmd": f"touch {marker}"}, "cmd", "immutable")
    # core.http exposes what an HTTP call needs, not a shell's cwd or env.
    assert_refused(operator_api, committed_db, marker, "core.http",
                   {"url": "https://example.com", "env": {"A": "1"}}, "env", "Unknown parameter")


def test_a_timeout_above_the_cap_is_refused(operator_api, committed_db, make_action, core_pack, marker):
    short = make_action("attack.quick", "local-shell-cmd", timeout=5,
                        parameters={"cmd": {"type": "string"}})

    assert_refused(operator_api, committed_db, marker, short, {"cmd": f"sleep 7; touch {marker}", "timeout": 6},
                   "timeout", "'timeout' may be at most 5 seconds for action attack.quick (its own timeout).")
    assert_refused(operator_api, committed_db, marker, "core.local", {"cmd": "true", "timeout": 86401},
                   "timeout", "at most 86400 seconds")
    assert_refused(operator_api, committed_db, marker, "core.http", {"url": "https://x.test", "timeout": 3600.5},
                   "timeout", "at most 3600 seconds")


def test_a_timeout_within_the_cap_holds_at_run_time(operator_api, make_action, marker):
    ref = make_action("attack.slow", "local-shell-cmd", timeout=30, parameters={"cmd": {"type": "string"}})

    created = operator_api.post(f"/api/v1/actions/{ref}/execute",
                                json={"parameters": {"cmd": f"sleep 20; touch {marker}", "timeout": 2}})
    assert created.status_code == 201 and created.get_json()["timeout"] == 2
    done = wait_until_done(operator_api, created.get_json()["id"], 60)
    assert done["status"] == "timeout"
    assert not marker.exists()


def test_a_rule_cannot_set_what_a_caller_may_not(operator_api, committed_db, core_pack, marker):
    rule = {"pack": "core", "name": "sneaky", "trigger": "core.webhook", "trigger_parameters": {"url": "sneaky"},
            "action": "core.local"}
    for parameters, name in [({"cmd": "true", "env": {"BASH_ENV": f"{marker}.sh"}}, "env"),
                             ({"cmd": "true", "env": {"LD_PRELOAD": "{{ trigger.body.lib }}"}}, "env"),
                             ({"cmd": "true", "timeout": 86401}, "timeout")]:
        response = operator_api.post("/api/v1/rules", json={**rule, "action_parameters": parameters})
        assert response.status_code == 422, response.get_json()
        assert name in response.get_json()["errors"]["action_parameters"]
    committed_db.rollback()
    assert committed_db.scalar(select(func.count()).select_from(Rule)) == 0
