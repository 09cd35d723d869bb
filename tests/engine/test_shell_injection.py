"""A value never becomes shell code: rendered commands are run by dash and bash to prove it.

Each payload tries to create a marker file; the test asserts the file never appears and
that the value arrives literally, or that rendering refuses the template naming the value.
"""

from __future__ import annotations

import subprocess

import pytest

from app.engine.parameters import schema_errors
from app.engine.templates import TemplateError, render_parameters, render_string

SHELLS = ["/bin/sh", "/bin/bash"]
PAYLOADS = [
    "$(touch PWNED)", "`touch PWNED`", "x; touch PWNED", "x | touch PWNED", "x && touch PWNED", "a\ntouch PWNED",
    "'; touch PWNED; echo '", '"; touch PWNED; echo "', "\\'; touch PWNED; #", "\\", "*", "a[$(touch PWNED)]",
    "${IFS}touch${IFS}PWNED", "$((1))$(touch PWNED)", "'\"'\"$(touch PWNED)\"'\"'", "\\\"$(touch PWNED)\\\"",
    "caf\u00e9 \u202e $(touch PWNED) \u2028", "x" * 5000 + "$(touch PWNED)", ")", "}", "!", "~root", "",
]
# (command template, what it prints given the value v): one level, then nested one and two levels.
LITERAL_SPOTS = [
    ("printf %s {{ v }}", "{v}"),
    ("printf %s '{{ v }}'", "{v}"),
    ('printf %s "{{ v }}"', "{v}"),
    ('printf %s "$(printf %s {{ v }})"', "{v}"),
    ("sh -c 'printf %s {{ v }}'", "{v}"),
    ("bash -c 'printf %s \"{{ v }}\"'", "{v}"),
    ('sh -c "printf %s \'{{ v }}\'"', "{v}"),
    ('bash -c "printf %s {{ v }}"', "{v}"),
    ("eval printf %s {{ v }}", "{v}"),
    ("eval 'printf %s \"{{ v }}\"'", "{v}"),
    ("sh -c \"bash -c 'printf %s {{ v }}'\"", "{v}"),
    ("bash -c 'sh -c \"printf %s \\\"{{ v }}\\\"\"'", "{v}"),
    ("sh -c 'eval \"printf %s {{ v }}\"'", "{v}"),
    ("env A=1 nice -n 1 timeout 5 sh -ec 'printf %s {{ v }}'", "{v}"),
    ("echo x | xargs sh -c 'printf %s {{ v }}'", "{v}"),
    ("find . -maxdepth 0 -exec sh -c 'printf %s {{ v }}' \\;", "{v}"),
    ("trap 'printf %s {{ v }}' EXIT", "{v}"),
    ("sh -c 'printf %s \"$1\"' sh {{ v }}", "{v}"),
    ("X={{ v }}; printf %s \"$X\"", "{v}"),
]


def run(shell: str, cmd: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([shell, "-c", cmd], capture_output=True, text=True, cwd=cwd, timeout=20)


def refusal(template: str, value: object, **schema_extra) -> str:
    schema = {"v": {"type": "string", **schema_extra}, "cmd": {"type": "string", "default": template}}
    with pytest.raises(TemplateError) as caught:
        render_parameters(schema, {"v": value}, {}, shell_quote={"cmd"})
    assert caught.value.parameter == "cmd"
    return caught.value.message


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("spot", "prints"), LITERAL_SPOTS)
def test_values_arrive_literally_and_run_nothing(spot, prints, shell, tmp_path):
    marker = tmp_path / "pwned"
    for payload in PAYLOADS:
        value = payload.replace("PWNED", str(marker))
        cmd = render_string("cmd", spot, {"v": value}, shell=True)
        result = run(shell, cmd, tmp_path)
        assert not marker.exists(), (spot, value, cmd)
        assert result.stdout == prints.format(v=value), (spot, value, cmd, result.stderr)


ARITHMETIC = [
    "echo $(( {{ v }} + 1 ))",
    "echo $[ {{ v }} + 1 ]",
    "(( {{ v }} > 1 )) && echo big",
    "for (( i = 0; i < {{ v }}; i++ )); do echo $i; done",
    "[[ {{ v }} -eq 1 ]] && echo one",
    "[[ 1 -lt {{ v }} ]] && echo less",
    "[ {{ v }} -gt 1 ]",
    "let x={{ v }}",
    "declare -i n={{ v }}",
    "a[{{ v }}]=1",
    "echo ${a[{{ v }}]}",
    "unset 'a[{{ v }}]'",
    "bash -c 'echo $(( {{ v }} ))'",
    "sh -c \"bash -c 'a[{{ v }}]=1'\"",
    "ssh host 'echo $(( {{ v }} ))'",
]


@pytest.mark.parametrize("spot", ARITHMETIC)
def test_arithmetic_takes_only_integer_literals(spot, tmp_path):
    marker = tmp_path / "pwned"
    for value in ("a[$(touch PWNED)]", "x[`touch PWNED`]", "1+1", "n", "1 ]; touch PWNED; [ 1", "0x", "١٢"):
        message = refusal(spot, value.replace("PWNED", str(marker)))
        assert "the value of 'v'" in message and ("integer literal" in message or "${...}" in message), message
    if "${" not in spot:  # ${ } holds no value at all
        cmd = render_string("cmd", spot, {"v": "3"}, shell=True)
        if not spot.startswith("ssh"):
            run("/bin/bash", cmd, tmp_path)
    assert not marker.exists()


def test_bash_really_runs_code_in_arithmetic(tmp_path):
    # Why the rule exists: a quoted value in bash arithmetic still runs its subscript.
    marker = tmp_path / "pwned"
    run("/bin/bash", f"x='a[$(touch {marker})]'; echo $(( x + 1 ))", tmp_path)
    assert marker.exists()


@pytest.mark.parametrize(("spot", "value", "says"), [
    ("echo {{ v }}", "-n", "would be read as an option by 'echo'"),
    ("rm {{ v }}", "-rf", "would be read as an option by 'rm'"),
    ("ls '{{ v }}'", "--help", "would be read as an option by 'ls'"),
    ('curl -d x "{{ v }}"', "--output=/etc/passwd", "would be read as an option by 'curl'"),
    ("ssh {{ v }} uptime", "-oProxyCommand=touch /tmp/x", "would be read as an option by 'ssh'"),
    ("sudo -u bob rm {{ v }}", "-rf", "would be read as an option by 'rm'"),
    ("sh -c 'rm {{ v }}'", "-rf", "inside 'sh -c': the value of 'v' starts with '-'"),
    ("{{ v }} --version", "id", "would name the command to run"),
    ("nohup {{ v }}", "id", "would name the command to run"),
    (". {{ v }}", "/tmp/x.sh", "would name the program or script that '.' runs"),
    ("bash {{ v }}", "/tmp/x.sh", "would name the program or script that 'bash' runs"),
    ("sh -c {{ v }}", "id", "inside 'sh -c': the value of 'v' would name the command to run"),
    ("ssh host {{ v }}", "id", "inside 'ssh': the value of 'v' would name the command to run"),
    ("eval {{ v }}", "id", "inside 'eval': the value of 'v' would name the command to run"),
    ("read {{ v }}", "a[$(id)]", "expects a variable name"),
    ("printf -v {{ v }} %s x", "a[$(id)]", "expects a variable name"),
    ("[[ -v {{ v }} ]]", "a[$(id)]", "expects a variable name"),
    ("echo ${x:-{{ v }}}", "y", "inside ${...} cannot be quoted safely"),
    ("awk '{ print \"{{ v }}\" }'", "x", "the program given to awk is awk code"),
    ("sed 's/a/{{ v }}/'", "b", "the program given to sed is sed code"),
    ("python3 -c 'print(\"{{ v }}\")'", "x", "the program given to python3 is python3 code"),
    ("fish -c 'echo {{ v }}'", "x", "fish parses its arguments with its own rules"),
    ("sudo -s echo {{ v }}", "x", "sudo -s/-i hands its arguments to a shell"),
    ("X=1; sh -c \"echo $X {{ v }}\"", "y", "holds an expansion of the outer shell"),
    ("eval \"$X\"; echo {{ v }}", "y", "holds an expansion of the outer shell"),
    ("sh -c 'eval \"$1\"' sh {{ v }}", "y", "inside 'sh -c': the code that 'eval' runs holds an expansion"),
    ("export X={{ v }}; bash -c \"$X\"", "y", "holds an expansion of the outer shell"),
    ("echo `echo {{ v }}`", "x", "a value inside `backticks` cannot be quoted safely"),
])
def test_refused_spots_name_the_parameter(spot, value, says):
    message = refusal(spot, value)
    assert message.startswith("unsafe in a shell command: ") and says in message, message


def test_allow_options_lets_a_parameter_be_an_option(tmp_path):
    schema = {"flags": {"type": "string", "allow_options": True}, "cmd": {"type": "string",
                                                                          "default": "printf '%s|' {{ flags }}"}}
    rendered = render_parameters(schema, {"flags": "-n; touch pwned"}, {}, shell_quote={"cmd"})
    assert run("/bin/sh", rendered["cmd"], tmp_path).stdout == "-n; touch pwned|"
    assert not (tmp_path / "pwned").exists()
    # Only the parameter that says so: a derived value is checked as such.
    assert "would be read as an option" in refusal("echo {{ v | lower }}", "-N", allow_options=True)
    # After '--' nothing is an option any more.
    assert render_string("cmd", "rm -- {{ v }}", {"v": "-rf"}, shell=True) == "rm -- -rf"


def test_integers_and_plain_names_still_work(tmp_path):
    schema = {"n": {"type": "integer"}, "name": {"type": "string"},
              "cmd": {"type": "string", "default": "read {{ name }} <<< x; echo $(( {{ n }} + 1 )) $var"}}
    rendered = render_parameters(schema, {"n": 41, "name": "var"}, {}, shell_quote={"cmd"})
    assert run("/bin/bash", rendered["cmd"], tmp_path).stdout == "42 x\n"


def test_stackstorm_style_commands_keep_working(tmp_path):
    for template, value, prints in [
        ("echo {{ v }}", "hello world", "hello world\n"),
        ("echo '{{ v }}'", "it's", "it's\n"),
        ('echo "{{ v }}"', 'say "hi" $HOME', 'say "hi" $HOME\n'),
        ("printf '%s %s' '{{ v }}' {{ v }}", "a*", "a* a*"),
    ]:
        cmd = render_string("cmd", template, {"v": value}, shell=True)
        assert run("/bin/sh", cmd, tmp_path).stdout == prints, cmd


def test_allow_options_is_a_checked_boolean_key():
    assert schema_errors({"flags": {"type": "string", "allow_options": True}}) == {}
    assert schema_errors({"flags": {"type": "string", "allow_options": "yes"}}) == \
        {"flags": ["'allow_options' must be true or false."]}
