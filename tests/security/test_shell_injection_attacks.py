"""Shell injection through parameter values, by an operator against actions with a fixed ``cmd``.

The action's author wrote the command; the attacker, with only the built-in operator role,
chooses the values of its parameters. Through the API and a real worker, each payload tries
to create a marker file: in arithmetic, array subscripts, nested ``sh -c`` / ``bash -c``
(one and two levels), ``eval``, ``ssh host '...'``, as an option, through word splitting and
globbing. Each execution either prints the value literally or fails with a message naming
the parameter; the marker never appears. A control run shows the payload would have worked.
"""

from __future__ import annotations

from tests.worker import wait_until_done


def shell_action(make_action, name: str, cmd: str, **n_definition) -> str:
    return make_action(f"inject.{name}", "local-shell-cmd",
                       parameters={"cmd": {"type": "string", "default": cmd, "immutable": True},
                                   "n": {"type": "string", **n_definition}})


def execute(api, ref: str, value: str) -> int:
    created = api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"n": value}})
    assert created.status_code == 201, created.get_json()
    return created.get_json()["id"]


REFUSED = [  # (action name, its cmd, payload, what the error says)
    ("arith", "echo $(( {{ n }} + 1 ))", "a[$(touch MARKER)]", "is in arithmetic, where only an integer literal"),
    ("dblparen", "bash -c '(( {{ n }} > 1 )) && echo big'", "x[$(touch MARKER)]", "inside 'bash -c': the value of 'n'"),
    ("test", "bash -c '[[ {{ n }} -eq 1 ]] && echo one'", "a[$(touch MARKER)]", "arithmetic operand of '[['"),
    ("subscript", "bash -c 'a[{{ n }}]=1; echo ok'", "$(touch MARKER)", "lands in an array subscript"),
    ("option", "ls {{ n }}", "--help", "starts with '-' and would be read as an option by 'ls'"),
    ("sshopt", "ssh {{ n }} uptime", "-oProxyCommand=touch MARKER", "would be read as an option by 'ssh'"),
    ("command", "sh -c {{ n }}", "touch MARKER", "inside 'sh -c': the value of 'n' would name the command to run"),
    ("outerexp", 'X=1; sh -c "echo $X {{ n }}"', "$(touch MARKER)", "holds an expansion of the outer shell"),
]
QUOTED = [  # (action name, its cmd, payload): each must print the payload and nothing else
    ("bare", "printf %s {{ n }}", "x; touch MARKER"),
    ("glob", "printf %s {{ n }}", "/*"),
    ("single", "printf %s '{{ n }}'", "'; touch MARKER; echo '"),
    ("double", 'printf %s "{{ n }}"', '"; touch MARKER; echo "'),
    ("shc", "sh -c 'printf %s {{ n }}'", "'; touch MARKER; '"),
    ("bashc", 'bash -c "printf %s \'{{ n }}\'"', "'\"$(touch MARKER)\"'"),
    ("twolevels", "sh -c \"bash -c 'printf %s {{ n }}'\"", "'\"`touch MARKER`\\"),
    ("eval", "eval printf %s {{ n }}", "$(touch MARKER)"),
    ("newline", "sh -c 'printf %s \"{{ n }}\"'", "a\ntouch MARKER"),
]


def test_values_never_run_as_shell_code(operator_api, make_action, marker):
    runs = []
    for name, cmd, payload, says in REFUSED:
        ref = shell_action(make_action, name, cmd)
        runs.append((execute(operator_api, ref, payload.replace("MARKER", str(marker))), says, None))
    for name, cmd, payload in QUOTED:
        ref = shell_action(make_action, name, cmd)
        value = payload.replace("MARKER", str(marker))
        runs.append((execute(operator_api, ref, value), None, value))
    for execution_id, says, value in runs:
        done = wait_until_done(operator_api, execution_id, 60)
        if says is not None:
            assert done["status"] == "failed", done
            assert done["error"].startswith("Parameter 'cmd': unsafe in a shell command: ") and says in done["error"]
        else:
            assert done["status"] == "succeeded", done
            assert done["result"]["stdout"] == value
    assert not marker.exists()


def test_integers_and_allowed_options_still_run(operator_api, make_action, marker):
    arith = shell_action(make_action, "sum", "echo $(( {{ n }} + 1 ))")
    flags = shell_action(make_action, "flags", "printf '%s|' {{ n }}", allow_options=True)
    done = wait_until_done(operator_api, execute(operator_api, arith, "41"), 60)
    assert done["status"] == "succeeded" and done["result"]["stdout"] == "42"
    done = wait_until_done(operator_api, execute(operator_api, flags, f"-n; touch {marker}"), 60)
    assert done["status"] == "succeeded" and done["result"]["stdout"] == f"-n; touch {marker}|"
    assert not marker.exists()


def test_control_the_payload_works_when_the_action_lets_it(operator_api, make_action, marker):
    # An action whose author hands the value to bash as code on purpose: the marker appears,
    # so its absence above means the defences held.
    ref = make_action("inject.control", "local-shell-cmd", parameters={
        "cmd": {"type": "string", "default": "bash -c \"$PAYLOAD\"", "immutable": True},
        "env": {"type": "object"}})
    created = operator_api.post(f"/api/v1/actions/{ref}/execute",
                                json={"parameters": {"env": {"PAYLOAD": f"x='a[$(touch {marker})]'; echo $((x))"}}})
    assert created.status_code == 201, created.get_json()
    wait_until_done(operator_api, created.get_json()["id"], 60)
    assert marker.exists()
