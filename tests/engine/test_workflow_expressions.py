"""Jinja and YAQL expressions of workflows (app/engine/workflows/expressions.py)."""

import time

import pytest

from app.engine.workflows import ExpressionError, ExpressionScope, evaluate

CTX = {"xs": [1, 2, 3], "host": {"name": "web1", "port": 80}, "greeting": "hi", "flag": True}


class FakeKv:
    """A datastore: attribute access like app/services/key_templates.Datastore, plus lookup()."""

    class _Scope:
        def __init__(self, values):
            self._values = values

        def __getattr__(self, name):
            return self._values[name]

    def __init__(self):
        self.values = {("system", "region"): "eu-1", ("user", "token"): "s3cret"}
        self.system = self._Scope({"region": "eu-1"})
        self.user = self._Scope({})
        self.lookups = []

    def lookup(self, scope, name, decrypt):
        self.lookups.append((scope, name, decrypt))
        return self.values[(scope, name)]


def scope(**kwargs):
    return ExpressionScope(ctx=CTX, **kwargs)


@pytest.mark.parametrize("expression, expected", [
    ("<% ctx(xs) %>", [1, 2, 3]),
    ("<% ctx('xs') %>", [1, 2, 3]),
    ("<% ctx().host.port %>", 80),
    ("<% $.host.name %>", "web1"),
    ("<% ctx(xs).select($ * 10) %>", [10, 20, 30]),
    ("<% ctx(flag) %>", True),
    ("<% zip(ctx(xs), [4, 5]) %>", [[1, 4], [2, 5], [3, None]]),
    ("<% json('{\"a\": [1]}') %>", {"a": [1]}),
    ("{{ ctx('xs') }}", [1, 2, 3]),
    ("{{ ctx(xs) }}", [1, 2, 3]),
    ("{{ ctx().host.port }}", 80),
    ("{{ ctx('host')['name'] }}", "web1"),
    ("{{ zip(ctx('xs'), [7]) }}", [[1, 7], [2, None], [3, None]]),
    ("{{ ctx('host') | to_json_string }}", '{"name": "web1", "port": 80}'),
])
def test_a_lone_expression_keeps_its_type(expression, expected):
    assert evaluate(expression, scope()) == expected


def test_mixed_text_renders_as_a_string_in_both_languages():
    assert evaluate("<% ctx(greeting) %>, {{ ctx('host').name }}:<% ctx(host).port %>", scope()) == "hi, web1:80"
    assert evaluate("{% for x in ctx('xs') %}{{ x }}{% endfor %}", scope()) == "123"


def test_lists_and_dicts_render_recursively_and_literals_stay():
    value = {"a": ["<% ctx(xs)[0] %>", "{{ ctx('greeting') }}"], "b": 5, "c": "plain"}
    assert evaluate(value, scope()) == {"a": [1, "hi"], "b": 5, "c": "plain"}


def test_a_rendered_value_is_not_rendered_again():
    data = ExpressionScope(ctx={"payload": "<% ctx(secret) %> {{ 7 * 7 }}", "secret": "x"})
    assert evaluate("<% ctx(payload) %>", data) == "<% ctx(secret) %> {{ 7 * 7 }}"


def test_task_functions_see_the_current_task():
    current = scope(task="t", status="failed", result={"code": 2}, statuses={"a": "succeeded", "b": "timeout"}.get)
    assert evaluate("<% failed() %>", current) is True
    assert evaluate("{{ succeeded() }}", current) is False
    assert evaluate("<% completed() %>", current) is True
    assert evaluate("<% result().code %>", current) == 2
    assert evaluate("{{ result().code }}", current) == 2
    assert evaluate("<% task_status(a) %> {{ task_status('b') }} <% task_status(zz) %>", current) == \
        "succeeded failed unset"


def test_timeout_and_abandoned_count_as_failed():
    for status in ("timeout", "abandoned"):
        assert evaluate("<% failed() %>", scope(task="t", status=status)) is True


def test_item_functions():
    named = scope(item={"host": "a", "cmd": "ls"})
    assert evaluate("<% item(host) %>-{{ item('cmd') }}", named) == "a-ls"
    assert evaluate("<% item() %>", named) == {"host": "a", "cmd": "ls"}
    assert evaluate("{{ item() }}", scope(item=5)) == 5
    with pytest.raises(ExpressionError, match="only available in a task with 'with' items"):
        evaluate("<% item() %>", scope())


def test_st2kv_function_and_objects_use_the_datastore():
    kv = FakeKv()
    with_kv = scope(kv=kv)
    assert evaluate("<% st2kv('system.region') %>", with_kv) == "eu-1"
    assert evaluate("{{ st2kv('user.token', decrypt=true) }}", with_kv) == "s3cret"
    assert evaluate("<% st2kv('token', decrypt => true) %>", with_kv) == "s3cret"
    assert kv.lookups == [("system", "region", False), ("user", "token", True), ("user", "token", True)]
    assert evaluate("{{ st2kv.system.region }}/{{ kv.system.region }}", with_kv) == "eu-1/eu-1"


def test_undefined_names_say_which_expression():
    with pytest.raises(ExpressionError, match="'nope' is not defined"):
        evaluate("<% ctx(nope) %>", scope())
    with pytest.raises(ExpressionError, match=r"\{\{ missing \}\}"):
        evaluate("{{ missing }}", scope())


def test_jinja_sandbox_refuses_python_internals():
    with pytest.raises(ExpressionError, match="refused by the sandbox"):
        evaluate("{{ ''.__class__ }}", scope())
    with pytest.raises(ExpressionError, match="refused by the sandbox"):
        evaluate("{{ 'x' * 100000000 }}", scope())


def test_yaql_iterator_and_memory_limits_refuse_huge_collections():
    started = time.monotonic()
    with pytest.raises(ExpressionError, match="exceeds|generates more than"):
        evaluate("<% range(100000000).toList() %>", scope())
    with pytest.raises(ExpressionError, match="exceeds|generates more than"):
        evaluate("<% range(100000000).sum() %>", scope())
    with pytest.raises(ExpressionError, match="exceeds|generates more than"):
        evaluate("<% sequence().where($ < 0).first() %>", scope())
    assert evaluate("<% range(3).sum() %> <% range(1, 4).toList() %> <% sequence(5).take(2).toList() %>",
                    scope()) == "3 [1, 2, 3] [5, 6]"
    assert time.monotonic() - started < 30  # refused early, not after materialising 10^8 items


def test_results_must_be_json_data():
    with pytest.raises(ExpressionError, match="not JSON data"):
        evaluate("{{ range }}", scope())


def test_a_failing_function_is_an_expression_error():
    with pytest.raises(ExpressionError, match=r"<% 1 / 0 %>"):
        evaluate("<% 1 / 0 %>", scope())
    with pytest.raises(ExpressionError, match="result"):
        evaluate("<% result() %>", scope())  # no current task here
