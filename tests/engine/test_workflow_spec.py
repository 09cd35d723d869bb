"""Parsing and validation of Orquesta workflow definitions (app/engine/workflows/spec.py)."""

import textwrap

import pytest

from app.engine.workflows import WorkflowError, load_workflow
from app.engine.workflows.spec import parse_inline_parameters

FILE = "workflows/deploy.yaml"


def load(text: str):
    return load_workflow(textwrap.dedent(text), FILE)


def refused(text: str) -> WorkflowError:
    with pytest.raises(WorkflowError) as caught:
        load(text)
    return caught.value


def test_every_syntax_form_is_parsed():
    spec = load("""
        version: 1.0
        description: all the forms
        input:
          - hosts
          - greeting: hello
        vars:
          - count: 3
        output:
          - done: <% ctx(done) %>
        tasks:
          first:
            action: core.echo message="hello <% ctx(greeting) %> world" count=3 flag=true,ratio=0.5; tags=[1,2]
            input:
              extra: "{{ ctx('count') }}"
            delay: 2
            retry:
              count: 2
              delay: 1
            next:
              - when: <% succeeded() %>
                publish: a=<% result() %> b="two words"
                do: second, third
              - when: <% failed() %>
                publish:
                  - err: <% result() %>
                do:
                  - fail
          second:
            with: host, cmd in <% zip(ctx(hosts), ctx(hosts)) %>
            action: core.remote hosts=<% item(host) %>
            next:
              - publish: {done: true}
                do: third
          third:
            join: all
            with:
              items: <% ctx(hosts) %>
              concurrency: <% ctx(count) %>
            action: core.echo
    """)
    first = spec.tasks["first"]
    assert first.action == "core.echo"
    assert first.input == {"message": "hello <% ctx(greeting) %> world", "count": 3, "flag": True, "ratio": 0.5,
                           "tags": [1, 2], "extra": "{{ ctx('count') }}"}
    assert first.delay == 2
    assert (first.retry.count, first.retry.delay, first.retry.when) == (2, 1, "<% failed() %>")
    assert first.next[0].publish == (("a", "<% result() %>"), ("b", "two words"))
    assert first.next[0].do == ("second", "third")
    assert first.next[1].publish == (("err", "<% result() %>"),)
    assert first.next[1].do == ("fail",)
    assert spec.tasks["second"].items.names == ("host", "cmd")
    assert spec.tasks["second"].next[0].publish == (("done", True),)
    third = spec.tasks["third"]
    assert third.join == "all" and third.items.names == () and third.items.concurrency == "<% ctx(count) %>"
    assert spec.input == (("hosts", None, True), ("greeting", "hello", False))
    assert spec.vars == (("count", 3),)
    assert spec.start == ("first",)
    assert spec.inbound["third"] == ("first", "second")


def test_version_as_string_and_noop_tasks_are_accepted():
    spec = load("""
        version: '1.0'
        tasks:
          setup:
            next:
              - do: [work]
          work: {}
    """)
    assert spec.tasks["setup"].action is None
    assert spec.tasks["work"].next == ()


def test_inline_parameters_parse_quotes_expressions_and_separators():
    assert parse_inline_parameters('a="x y" b=\'q\' c=<% ctx("n") %>, d={{ ctx("m") }}; e=null f=1.5') == {
        "a": "x y", "b": "q", "c": '<% ctx("n") %>', "d": '{{ ctx("m") }}', "e": None, "f": 1.5}
    assert parse_inline_parameters('a="<% ctx("x") %> and more"') == {"a": '<% ctx("x") %> and more'}
    assert parse_inline_parameters("n=h{{ item('x') }} m=<% 1 + 2 %> j={\"a\": 1}") == {
        "n": "h{{ item('x') }}", "m": "<% 1 + 2 %>", "j": {"a": 1}}
    assert parse_inline_parameters("not a parameter") is None


@pytest.mark.parametrize("text, message", [
    ("- just a list", "must be a YAML mapping"),
    ("tasks: {t: {action: core.noop}}", "'version' is required"),
    ("version: 2.0\ntasks: {t: {action: core.noop}}", "only 1.0 is supported"),
    ("version: 1.0\ntasks: {}", "at least one task"),
    ("version: 1.0\nfoo: 1\ntasks: {t: {action: core.noop}}", "unknown key 'foo'"),
])
def test_top_level_refusals_name_the_file_and_field(text, message):
    error = refused(text)
    assert message in str(error)
    assert str(error).startswith(f"{FILE}")


@pytest.mark.parametrize("tasks, task, field, message", [
    ("notify: {action: core.echo, bogus: 1}", "notify", "bogus", "unknown key 'bogus'"),
    ("fail: {action: core.echo}", "fail", "name", "engine command"),
    ("noop: {action: core.echo}", "noop", "name", "engine command"),
    ("notify: {action: core.echo, next: [{do: notfy}]}", "notify", "next[0].do", "unknown task 'notfy'"),
    ("notify: {action: echo}", "notify", "action", "not an action ref"),
    ("notify: {action: 'core.echo message=\"unclosed'}", "notify", "action", "cannot parse the inline"),
    ("notify: {action: core.echo, join: all}", "notify", "join", "no task transitions to"),
    ("notify: {action: core.echo, input: {a: '<% 1 + %>'}}", "notify", "input", "YAQL syntax error"),
    ("notify: {action: core.echo, input: {a: '{{ 1 + }}'}}", "notify", "input", "Jinja syntax error"),
    ("notify: {action: core.echo, next: [{when: '<% ( %>'}]}", "notify", "next[0].when", "YAQL syntax"),
    ("notify: {action: core.echo, next: [{publish: [{x: '{{ ) }}'}]}]}", "notify", "next[0].publish.x",
     "Jinja syntax"),
    ("notify: {action: core.echo, with: 'x in ctx(xs)'}", "notify", "with", "cannot parse"),
    ("notify: {action: core.echo, with: '<% ctx( %>'}", "notify", "with", "YAQL syntax"),
    ("notify: {action: core.echo, with: {items: '<% ctx(xs) %>', concurrency: 0}}", "notify", "with.concurrency",
     "positive integer"),
    ("notify: {action: core.echo, retry: {count: -1}}", "notify", "retry.count", "positive integer"),
    ("notify: {action: core.echo, retry: {count: 2, delay: 0}}", "notify", "retry.delay", "positive number"),
    ("notify: {action: core.echo, retry: {count: 2, when: '<% x( %>'}}", "notify", "retry.when", "YAQL"),
    ("notify: {action: core.echo, delay: -5}", "notify", "delay", "positive number"),
    ("notify: {action: core.echo, delay: '{{ %}'}", "notify", "delay", "unclosed expression"),
])
def test_task_refusals_name_file_task_and_field(tasks, task, field, message):
    error = refused(f"version: 1.0\ntasks:\n  {tasks}\n")
    assert message in str(error)
    assert str(error).startswith(f"{FILE}: task '{task}', field '{field}': ")
    assert f"{task}.{field}" in error.errors


def test_join_count_larger_than_inbound_is_refused():
    error = refused("""
        version: 1.0
        tasks:
          a: {action: core.noop, next: [{do: c}]}
          b: {action: core.noop, next: [{do: c}]}
          c: {action: core.noop, join: 3}
    """)
    assert "join count 3 is larger than its 2 inbound tasks" in str(error)
    assert error.task == "c" and error.field == "join"


def test_a_cycle_nothing_enters_is_unreachable():
    error = refused("""
        version: 1.0
        tasks:
          start: {action: core.noop}
          ping: {action: core.noop, next: [{do: pong}]}
          pong: {action: core.noop, next: [{do: ping}]}
    """)
    assert set(error.errors) == {"ping.name", "pong.name"}
    assert "unreachable" in str(error)


def test_a_cycle_entered_from_a_start_task_is_fine():
    spec = load("""
        version: 1.0
        tasks:
          start: {action: core.noop, next: [{do: ping}]}
          ping: {action: core.noop, next: [{when: '<% false %>', do: pong}]}
          pong: {action: core.noop, next: [{do: ping}]}
    """)
    assert spec.start == ("start",)


def test_expressions_in_input_vars_and_output_are_checked():
    error = refused("""
        version: 1.0
        input:
          - a: <% 1 + %>
        vars:
          - b: "{{ }"
        output:
          - c: <% ) %>
        tasks:
          t: {action: core.noop}
    """)
    assert set(error.errors) == {"input[0].a", "vars[0].b", "output[0].c"}


def test_all_problems_are_reported_together():
    error = refused("""
        version: 1.0
        tasks:
          a: {action: core.echo, next: [{do: nowhere}]}
          b: {action: nodot}
    """)
    assert set(error.errors) == {"a.next[0].do", "b.action"}


def test_oversized_and_deep_documents_are_refused():
    assert "larger than" in str(refused("version: 1.0\n#" + "x" * (1024 * 1024)))
    assert "nests" in str(refused("version: 1.0\nx: " + "[" * 200 + "]" * 200))
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))
    assert "more than" in str(refused(bomb))


def test_errors_dict_is_shaped_for_a_4xx_body():
    error = refused("version: 1.0\ntasks:\n  notify: {action: core.echo, next: [{do: notfy}]}\n")
    assert error.errors == {"notify.next[0].do": ["unknown task 'notfy'"]}
    assert str(error) == "workflows/deploy.yaml: task 'notify', field 'next[0].do': unknown task 'notfy'"
