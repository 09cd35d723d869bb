"""Sandboxed rendering of action parameters: references, defaults, cycles, shell quoting."""

from __future__ import annotations

import subprocess

import pytest

from app.engine.templates import TemplateError, render_parameters, render_string

SCHEMA = {
    "message": {"type": "string"},
    "count": {"type": "integer"},
    "hosts": {"type": "array"},
    "cmd": {"type": "string", "default": "echo {{ message }}"},
    "greeting": {"type": "string", "default": "{{ salutation }}, {{ message }}"},
    "salutation": {"type": "string", "default": "Hello"},
}


def error_of(*args, **kwargs) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        render_parameters(*args, **kwargs)
    return caught.value


def test_defaults_reference_other_parameters_in_dependency_order():
    rendered = render_parameters(SCHEMA, {"message": "world"}, {})
    assert rendered == {"message": "world", "cmd": "echo world", "greeting": "Hello, world", "salutation": "Hello"}


def test_context_values_and_stackstorm_aliases():
    rendered = render_parameters(
        {"message": {"type": "string"}, "token": {"type": "string"}, "region": {"type": "string"}},
        {"message": "{{ trigger.body.text | upper }}", "token": "{{ st2kv.system.api_token }}",
         "region": "{{ config_context.region }}"},
        {"trigger": {"body": {"text": "disk full"}}, "kv": {"system": {"api_token": "t0k"}}, "config": {"region": "eu"}},
    )
    assert rendered == {"message": "DISK FULL", "token": "t0k", "region": "eu"}


def test_single_expressions_keep_their_type():
    rendered = render_parameters(SCHEMA, {"count": "{{ trigger.n + 1 }}", "hosts": "{{ trigger.hosts }}",
                                          "message": "{{ trigger.n }}"}, {"trigger": {"n": 2, "hosts": ["a", "b"]}})
    assert rendered["count"] == 3 and rendered["hosts"] == ["a", "b"]
    assert rendered["message"] == "2"  # declared a string: stays one


def test_nested_values_are_rendered():
    rendered = render_parameters({"body": {"type": "object"}}, {"body": {"text": "hi {{ who }}", "n": [1, "{{ n }}"]}},
                                 {"who": "ada", "n": 5})
    assert rendered == {"body": {"text": "hi ada", "n": [1, 5]}}


def test_rendered_values_are_never_rendered_again():
    rendered = render_parameters(SCHEMA, {"message": "{{ trigger.text }}"},
                                 {"trigger": {"text": "{{ kv.system.secret }}"}, "kv": {"system": {"secret": "s"}}})
    assert rendered["message"] == "{{ kv.system.secret }}" and rendered["cmd"] == "echo {{ kv.system.secret }}"
    literal = render_parameters(SCHEMA, {"message": "{{ 7 * 6 }}"}, {}, literal={"message"})
    assert literal["message"] == "{{ 7 * 6 }}" and literal["cmd"] == "echo {{ 7 * 6 }}"


def test_cycles_are_reported():
    error = error_of(SCHEMA, {"message": "{{ cmd }}"}, {})
    assert error.errors == {"message": ["the templates refer to each other in a cycle: message -> cmd -> message"]}
    assert str(error) == "Parameter 'message': the templates refer to each other in a cycle: message -> cmd -> message"
    assert error_of(SCHEMA, {"message": "{{ message }}!"}, {}).message == \
        "the templates refer to each other in a cycle: message -> message"


def test_undefined_names_and_syntax_errors_name_the_parameter():
    assert error_of(SCHEMA, {"message": "{{ trigger.nope }}"}, {"trigger": {}}).errors == \
        {"message": ["undefined in the template: 'dict object' has no attribute 'nope'"]}
    assert error_of(SCHEMA, {"message": "{{ typo }}"}, {}).errors == \
        {"message": ["undefined in the template: 'typo' is undefined"]}
    assert error_of(SCHEMA, {"message": "{{ oops"}, {}).message.startswith("template syntax error on line 1:")
    # An unset optional parameter is undefined too, but `default` handles it.
    assert render_parameters({"a": {"type": "string"}, "b": {"type": "string", "default": "{{ a | default('x') }}"}},
                             {}, {}) == {"b": "x"}


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ [].append(1) }}",
    "{{ config.items().__iter__ }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ 'a' | attr('__class__') }}",
])
def test_sandbox_escapes_are_refused(template):
    error = error_of({"message": {"type": "string"}}, {"message": template}, {"config": {"a": 1}})
    assert error.parameter == "message"
    assert error.message.startswith(("refused by the template sandbox:", "undefined in the template:"))


def test_resource_exhaustion_is_refused():
    assert error_of(SCHEMA, {"message": "{{ 'x' * 100000000 }}"}, {}).message == \
        "refused by the template sandbox: the result of '*' would be too large"
    assert error_of(SCHEMA, {"message": "{{ 9 ** 99999999 }}"}, {}).message == \
        "refused by the template sandbox: the result of '**' would be too large"
    assert "The sandbox blocks ranges larger than MAX_RANGE" in \
        error_of(SCHEMA, {"message": "{% for i in range(10**9) %}{% endfor %}"}, {}).message


NASTY = ["x; touch PWNED", "$(touch PWNED)", "`touch PWNED`", "a\ntouch PWNED", "'; touch PWNED; echo '",
         '"; touch PWNED; echo "', "\\", "", "*", "${IFS}touch${IFS}PWNED", ")", "it's \"q\" $HOME"]
SPOTS = [  # (command template, what it must print given the value v)
    ("printf %s {{ v }}", "{v}"),
    ("printf %s '{{ v }}'", "{v}"),
    ('printf %s "{{ v }}"', "{v}"),
    ('printf %s "<{{ v }}>"', "<{v}>"),
    ('printf %s "$(printf %s {{ v }})"', "{v}"),
    ("printf %s \"$(printf %s '{{ v }}')\"", "{v}"),
    ("printf %s x{{ v }}{{ v }}", "x{v}{v}"),
    ("( printf %s {{ v }} )", "{v}"),
    ("{% macro m(a) %}[{{ a }}]{% endmacro %}printf %s {{ m(v) }}", "[{v}]"),
    ("{% set s %}({{ v }}){% endset %}printf %s {{ s }}", "({v})"),
]


@pytest.mark.parametrize(("spot", "prints"), SPOTS)
def test_shell_quoting_keeps_every_value_data(spot, prints, tmp_path):
    for nasty in NASTY:
        value = nasty.replace("PWNED", str(tmp_path / "pwned"))
        cmd = render_string("cmd", spot, {"v": value}, shell=True)
        output = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True, cwd=tmp_path).stdout
        assert output == prints.format(v=value), (spot, value, cmd)
        assert not (tmp_path / "pwned").exists(), (spot, value, cmd)


@pytest.mark.parametrize(("spot", "reason"), [
    ("echo `echo {{ v }}`", "a value inside `backticks` cannot be quoted safely; use $( ) instead"),
    ("echo hi # {{ v }}", "a value inside a shell comment cannot be placed safely"),
    ("cat <<EOF\n{{ v }}\nEOF", "a value after a here-document (<<) cannot be quoted safely; pass it in 'env' instead"),
    ("echo \\{{ v }}", "a value right after '\\' cannot be quoted safely"),
    ('echo "${{ v }}"', "a value right after '$' cannot be quoted safely"),
    ("echo $'{{ v }}'", "a value inside $'...' cannot be quoted safely"),
])
def test_spots_that_cannot_be_quoted_are_refused(spot, reason):
    schema = {"v": {"type": "string"}, "cmd": {"type": "string", "default": spot}}
    error = error_of(schema, {"v": "x"}, {}, shell_quote={"cmd"})
    assert error.errors == {"cmd": [f"unsafe in a shell command: {reason}"]}


def test_shell_quoting_applies_only_to_the_named_parameters():
    rendered = render_parameters(SCHEMA, {"message": "a b"}, {}, shell_quote={"cmd"})
    assert rendered["cmd"] == "echo 'a b'" and rendered["greeting"] == "Hello, a b"
