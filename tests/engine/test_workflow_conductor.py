"""The workflow state machine (app/engine/workflows/conductor.py), driven as a runner would:
the state goes through json.dumps/loads between every call, as it does through a jsonb column."""

import json
import textwrap
import time
from collections.abc import Callable

import pytest

from app.engine.workflows import Conductor, TaskRequest, WorkflowError, load_workflow


def roundtrip(state: dict) -> dict:
    return json.loads(json.dumps(state))


def conductor(text: str, kv=None) -> Conductor:
    return Conductor(load_workflow(textwrap.dedent(text), "workflows/test.yaml"), kv=kv)


Outcome = Callable[[TaskRequest], tuple[str, object]]


def echo(request: TaskRequest) -> tuple[str, object]:
    return "succeeded", request.input


class Driver:
    """Runs a workflow to its end, one request at a time, remembering what was requested."""

    def __init__(self, flow: Conductor, outcome: Outcome = echo, limit: int | None = None) -> None:
        self.flow = flow
        self.outcome = outcome
        self.limit = limit
        self.requests: list[TaskRequest] = []
        self.max_active = 0

    def run(self, state: dict) -> dict:
        pending: list[TaskRequest] = []
        while True:
            state = roundtrip(state)
            new = self.flow.next_requests(state, self.limit)
            state = roundtrip(state)
            self.requests.extend(new)
            pending.extend(new)
            self.max_active = max(self.max_active, len(self.flow.active(state)))
            if not pending:
                return state
            request = pending.pop(0)
            status, result = self.outcome(request)
            self.flow.task_ended(state, request.key, status, result, error=None if status == "succeeded" else "boom")

    def start(self, inputs: dict | None = None) -> dict:
        return self.run(self.flow.start(inputs or {}))

    def tasks(self) -> list[str]:
        return [request.task for request in self.requests]


SEQUENCE = """
    version: 1.0
    input:
      - name
      - greeting: hello
    vars:
      - shout: <% ctx(greeting).toUpper() %>
    tasks:
      first:
        action: core.echo message="<% ctx(shout) %> <% ctx(name) %>"
        next:
          - when: <% succeeded() %>
            publish:
              - said: <% result().message %>
              - twice: "{{ ctx('said') }} {{ ctx('said') }}"
            do: second
      second:
        action: core.echo
        input:
          message: "{{ ctx('twice') }}"
          count: 3
        next:
          - publish: last=<% result().message %> flag=true
    output:
      - said: <% ctx(said) %>
      - last: "{{ ctx('last') }}"
      - flag: <% ctx(flag) %>
"""


def test_sequence_with_yaql_and_jinja_publishes_and_output():
    flow = conductor(SEQUENCE)
    driver = Driver(flow)
    state = driver.start({"name": "ann"})
    assert [(r.key, r.task, r.action, r.input) for r in driver.requests] == [
        ("first", "first", "core.echo", {"message": "HELLO ann"}),
        ("second", "second", "core.echo", {"message": "HELLO ann HELLO ann", "count": 3}),
    ]
    assert flow.status(state) == "succeeded"
    assert flow.output(state) == {"said": "HELLO ann", "last": "HELLO ann HELLO ann", "flag": True}
    assert flow.task_states(state) == {"first": "succeeded", "second": "succeeded"}
    assert flow.errors(state) == []


def test_input_is_checked():
    flow = conductor(SEQUENCE)
    with pytest.raises(WorkflowError, match="'name' is required"):
        flow.start({})
    with pytest.raises(WorkflowError, match="unknown input 'nmae'"):
        flow.start({"name": "x", "nmae": "y"})


PARALLEL_JOIN = """
    version: 1.0
    tasks:
      setup:
        next:
          - publish: base=1
            do: left, right
      left:
        action: core.echo
        next:
          - publish: {l: <% ctx(base) + 1 %>, saw_r: "<% ctx().get(r) %>"}
            do: [merge]
      right:
        action: core.echo
        next:
          - publish: [{r: "{{ ctx('base') + 2 }}"}]
            do: merge
      merge:
        join: all
        action: core.echo sum=<% ctx(l) + ctx(r) %>
        next:
          - publish: total=<% result().sum %>
    output:
      - total: <% ctx(total) %>
      - saw_r: <% ctx(saw_r) %>
"""


def test_parallel_branches_join_with_merged_contexts():
    flow = conductor(PARALLEL_JOIN)
    driver = Driver(flow)
    state = driver.start()
    assert driver.tasks() == ["left", "right", "merge"]  # setup has no action: it never becomes a request
    assert driver.requests[-1].input == {"sum": 5}
    assert flow.output(state) == {"total": 5, "saw_r": None}  # left did not see right's publish
    assert flow.status(state) == "succeeded"


def test_join_waits_for_every_inbound_task():
    flow = conductor(PARALLEL_JOIN)
    state = roundtrip(flow.start({}))
    first = flow.next_requests(state)
    assert [r.key for r in first] == ["left", "right"]
    flow.task_ended(state, "left", "succeeded", {})
    assert flow.next_requests(roundtrip(state)) == []
    flow.task_ended(state, "right", "succeeded", {})
    assert [r.task for r in flow.next_requests(state)] == ["merge"]


def test_join_count_starts_after_n_arrivals_and_only_once():
    flow = conductor("""
        version: 1.0
        tasks:
          setup: {next: [{do: [a, b, c]}]}
          a: {action: core.echo, next: [{do: barrier}]}
          b: {action: core.echo, next: [{do: barrier}]}
          c: {action: core.echo, next: [{do: barrier}]}
          barrier: {join: 2, action: core.echo}
    """)
    state = flow.start({})
    assert [r.key for r in flow.next_requests(state)] == ["a", "b", "c"]
    flow.task_ended(state, "c", "succeeded", {})
    assert flow.next_requests(state) == []
    flow.task_ended(state, "a", "succeeded", {})
    assert [r.key for r in flow.next_requests(state)] == ["barrier"]
    flow.task_ended(state, "b", "succeeded", {})
    assert flow.next_requests(state) == []
    flow.task_ended(state, "barrier", "succeeded", {})
    assert flow.status(state) == "succeeded"


def test_without_join_each_transition_starts_its_own_run():
    flow = conductor("""
        version: 1.0
        tasks:
          setup: {next: [{do: "a, b"}]}
          a: {action: core.echo, next: [{publish: who=a, do: log}]}
          b: {action: core.echo, next: [{publish: who=b, do: log}]}
          log: {action: core.log message=<% ctx(who) %>}
    """)
    driver = Driver(flow)
    state = driver.start()
    logs = [(r.key, r.input) for r in driver.requests if r.task == "log"]
    assert logs == [("log", {"message": "a"}), ("log#2", {"message": "b"})]
    assert flow.status(state) == "succeeded"


FAILURE = """
    version: 1.0
    tasks:
      work:
        action: core.local cmd=false
        next:
          - when: <% succeeded() %>
            publish: ok=true
            do: after
          - when: <% failed() %>
            publish: err=<% result().stderr %>
            do: {do}
      after: {{action: core.echo, next: [{{when: <% false %>, do: cleanup}}]}}
      cleanup: {{action: core.echo message=<% ctx(err) %>}}
    output:
      - err: <% ctx().get(err) %>
"""


def failing(task: str) -> Outcome:
    def outcome(request: TaskRequest) -> tuple[str, object]:
        return ("failed", {"stderr": "disk full"}) if request.task == task else ("succeeded", request.input)
    return outcome


def test_a_failure_transition_remediates():
    flow = conductor(FAILURE.format(do="cleanup"))
    driver = Driver(flow, failing("work"))
    state = driver.start()
    assert driver.tasks() == ["work", "cleanup"]
    assert driver.requests[1].input == {"message": "disk full"}
    assert flow.status(state) == "succeeded"
    assert flow.output(state) == {"err": "disk full"}


def test_a_failure_with_only_continue_fails_the_workflow_but_publishes():
    flow = conductor(FAILURE.format(do="continue"))
    state = Driver(flow, failing("work")).start()
    assert flow.status(state) == "failed"
    assert flow.output(state) == {"err": "disk full"}
    assert flow.errors(state) == [{"type": "error", "message": "boom", "task_id": "work",
                                   "result": {"stderr": "disk full"}}]


def test_noop_remediates_and_fail_fails():
    flow = conductor(FAILURE.format(do="noop"))
    assert flow.status(Driver(flow, failing("work")).start()) == "succeeded"
    flow = conductor(FAILURE.format(do="[cleanup, fail]"))
    driver = Driver(flow, failing("work"))
    state = driver.start()
    assert driver.tasks() == ["work", "cleanup"]  # a task listed beside 'fail' still runs
    assert flow.status(state) == "failed"
    assert {"type": "error", "message": "task 'work' transitioned to 'fail'", "task_id": "work"} in flow.errors(state)


def test_a_failure_without_transitions_fails_and_nothing_new_starts():
    flow = conductor("""
        version: 1.0
        tasks:
          setup: {next: [{do: [slow, bad]}]}
          slow: {action: core.echo, next: [{publish: slow_done=true, do: never}]}
          bad: {action: core.local}
          never: {action: core.echo}
        output:
          - slow_done: <% ctx().get(slow_done) %>
    """)
    state = flow.start({})
    assert [r.key for r in flow.next_requests(state)] == ["slow", "bad"]
    flow.task_ended(state, "bad", "failed", {"rc": 1}, "exit 1")
    assert flow.status(state) == "running"  # slow is still running: it is let finish
    flow.task_ended(state, "slow", "succeeded", {})
    assert flow.next_requests(state) == []
    assert flow.status(state) == "failed"
    assert flow.task_states(state) == {"slow": "succeeded", "bad": "failed", "setup": "succeeded"}
    assert flow.output(state) == {"slow_done": True}
    assert flow.errors(state)[0] == {"type": "error", "message": "exit 1", "task_id": "bad", "result": {"rc": 1}}


def test_next_do_fail_without_when():
    flow = conductor("""
        version: 1.0
        tasks:
          stop: {next: [{do: fail}]}
    """)
    state = Driver(flow).start()
    assert flow.status(state) == "failed"


def test_timeout_counts_as_failed_and_cancel_ends_canceled():
    flow = conductor(FAILURE.format(do="cleanup"))
    driver = Driver(flow, lambda r: ("timeout", {"stderr": "slow"}) if r.task == "work" else ("succeeded", {}))
    assert flow.status(driver.start()) == "succeeded" and driver.tasks() == ["work", "cleanup"]
    state = flow.start({})
    flow.next_requests(state)
    flow.task_ended(state, "work", "canceled", None)
    assert flow.next_requests(state) == []
    assert flow.status(state) == "canceled"


def test_retry_then_success_with_delay_and_count():
    flow = conductor("""
        version: 1.0
        tasks:
          flaky:
            action: core.http url=x
            delay: 5
            retry: {count: 3, delay: 2}
            next:
              - when: <% succeeded() %>
                publish: tries=<% result().attempt %>
    """)
    attempts = []

    def outcome(request):
        attempts.append((request.key, request.delay))
        return ("failed", None) if len(attempts) < 3 else ("succeeded", {"attempt": len(attempts)})

    state = Driver(flow, outcome).start()
    assert attempts == [("flaky", 5.0), ("flaky~1", 2.0), ("flaky~2", 2.0)]
    assert flow.status(state) == "succeeded"
    assert flow.output(state) == {}
    assert Conductor.context(flow, state)["tries"] == 3


def test_retry_exhausted_fails_and_retry_when_reads_the_result():
    flow = conductor("""
        version: 1.0
        tasks:
          call:
            action: core.http
            retry: {when: "<% result().code != 200 %>", count: 2}
    """)
    seen = []
    state = Driver(flow, lambda r: seen.append(r.key) or ("succeeded", {"code": 500})).start()
    assert seen == ["call", "call~1", "call~2"]
    assert flow.status(state) == "succeeded"  # the last attempt's status stands
    state = Driver(flow, lambda r: ("failed", {"code": 200})).start()
    assert flow.status(state) == "failed"  # retry.when is false: no retry


def test_with_items_forms_and_zip():
    flow = conductor("""
        version: 1.0
        input: [hosts, cmds]
        tasks:
          bare:
            with: <% ctx(hosts) %>
            action: core.echo message=<% item() %>
            next: [{publish: bare=<% result() %>}]
          named:
            with: host in {{ ctx('hosts') }}
            action: core.echo message="{{ item('host') }}!"
            next: [{publish: named=<% result().select($.message) %>}]
          pairs:
            with:
              items: host, cmd in <% zip(ctx(hosts), ctx(cmds)) %>
              concurrency: 1
            action: core.remote hosts=<% item(host) %> cmd=<% item(cmd) %>
            next: [{publish: pairs=<% result() %>}]
        output:
          - bare: <% ctx(bare) %>
          - named: <% ctx(named) %>
          - pairs: <% ctx(pairs) %>
    """)
    driver = Driver(flow)
    state = driver.start({"hosts": ["a", "b"], "cmds": ["ls"]})
    assert flow.status(state) == "succeeded"
    out = flow.output(state)
    assert out["bare"] == [{"message": "a"}, {"message": "b"}]
    assert out["named"] == ["a!", "b!"]
    assert out["pairs"] == [{"hosts": "a", "cmd": "ls"}, {"hosts": "b", "cmd": None}]
    assert sorted((r.key, r.item_index) for r in driver.requests if r.task == "pairs") == [
        ("pairs[0]", 0), ("pairs[1]", 1)]
    assert driver.max_active <= 2 + 2 + 1


def test_with_items_failure_fails_the_task_after_all_items():
    flow = conductor("""
        version: 1.0
        tasks:
          each:
            with: {items: "<% [1, 2, 3] %>", concurrency: 2}
            action: core.echo n=<% item() %>
            next:
              - when: <% failed() %>
                publish: results=<% result() %>
                do: noop
        output: [{results: <% ctx(results) %>}]
    """)
    driver = Driver(flow, lambda r: ("failed", "bad") if r.item_index == 1 else ("succeeded", r.item_index))
    state = driver.start()
    assert len(driver.requests) == 3
    assert flow.output(state) == {"results": [0, "bad", 2]}
    assert flow.status(state) == "succeeded"


def test_a_thousand_items_at_concurrency_twenty_is_cheap():
    flow = conductor("""
        version: 1.0
        input: [n]
        vars:
          - region: eu
        tasks:
          fan:
            with:
              items: host in <% range(ctx(n)) %>
              concurrency: <% 10 * 2 %>
            action: core.echo value=<% item(host) * 2 %> region=<% ctx().region %> name=h{{ item('host') }}
            next:
              - when: <% succeeded() %>
                publish: total=<% result().select($.value).sum() %>
        output: [{total: <% ctx(total) %>}]
    """)
    started = time.monotonic()
    driver = Driver(flow, lambda request: ("succeeded", {"value": request.input["value"]}))
    state = driver.start({"n": 1000})
    elapsed = time.monotonic() - started
    assert len(driver.requests) == 1000
    assert [r.item_index for r in driver.requests] == list(range(1000))
    assert driver.max_active == 20
    assert driver.requests[999].input == {"value": 1998, "region": "eu", "name": "h999"}
    assert flow.output(state) == {"total": sum(range(1000)) * 2}
    assert flow.status(state) == "succeeded"
    print(f"1000 items at concurrency 20: {elapsed:.2f}s")  # kept fast; not asserted


def test_limit_caps_the_requests_returned():
    flow = conductor("""
        version: 1.0
        tasks:
          fan: {with: "<% range(10) %>", action: core.echo}
    """)
    state = flow.start({})
    assert len(flow.next_requests(state, limit=4)) == 4
    assert len(flow.next_requests(state, limit=4)) == 4
    assert len(flow.next_requests(state, limit=4)) == 2
    assert len(flow.active(state)) == 10


def test_task_ended_is_idempotent():
    flow = conductor(SEQUENCE)
    state = flow.start({"name": "x"})
    (first,) = flow.next_requests(state)
    flow.task_ended(state, first.key, "succeeded", {"message": "m"})
    snapshot = json.dumps(state, sort_keys=True)
    flow.task_ended(state, first.key, "succeeded", {"message": "m"})
    flow.task_ended(state, first.key, "failed", None)
    flow.task_ended(state, "nonsense", "failed", None)
    assert json.dumps(state, sort_keys=True) == snapshot
    assert [r.key for r in flow.next_requests(state)] == ["second"]


def test_st2kv_lookups_through_the_datastore():
    class Scope:
        def __init__(self, values):
            self.values = values

        def __getattr__(self, name):
            return self.values[name]

    class Kv:
        system = Scope({"region": "eu"})
        user = Scope({})

        def lookup(self, scope, name, decrypt):
            return {("system", "api"): "https://api", ("system", "token"): "T" if decrypt else "enc"}[(scope, name)]

    flow = conductor("""
        version: 1.0
        vars:
          - url: <% st2kv('system.api') %>
        tasks:
          call:
            action: core.http url=<% ctx(url) %>
            input:
              token: "{{ st2kv('system.token', decrypt=true) }}"
              region: "{{ st2kv.system.region }}"
    """, kv=Kv())
    driver = Driver(flow)
    driver.start()
    assert driver.requests[0].input == {"url": "https://api", "token": "T", "region": "eu"}


def test_rerun_from_a_failed_task_keeps_earlier_publishes():
    flow = conductor("""
        version: 1.0
        tasks:
          prepare:
            action: core.echo
            next: [{when: <% succeeded() %>, publish: ticket=T-1, do: deploy}]
          deploy:
            action: core.deploy ticket=<% ctx(ticket) %>
            next: [{when: <% succeeded() %>, publish: deployed=<% result().version %>}]
        output:
          - ticket: <% ctx(ticket) %>
          - deployed: <% ctx(deployed) %>
    """)
    calls = []

    def first_time_fails(request):
        calls.append(request.key)
        return ("failed", None) if request.key == "deploy" else ("succeeded", {"version": 7})

    driver = Driver(flow, first_time_fails)
    state = driver.start()
    assert flow.status(state) == "failed"
    with pytest.raises(WorkflowError, match="unknown task 'nope'"):
        flow.rerun(state, ["nope"])
    with pytest.raises(WorkflowError, match="did not fail"):
        flow.rerun(state, ["prepare"])
    again = roundtrip(flow.rerun(state, ["deploy"]))
    assert flow.status(state) == "failed"  # the old state is unchanged
    state = driver.run(again)
    assert calls == ["prepare", "deploy", "deploy#2"]
    assert driver.requests[-1].input == {"ticket": "T-1"}
    assert flow.status(state) == "succeeded"
    assert flow.output(state) == {"ticket": "T-1", "deployed": 7}
    assert flow.errors(state) == []


def test_expression_errors_while_running_fail_the_workflow_with_an_error():
    flow = conductor("""
        version: 1.0
        tasks:
          t: {action: core.echo message=<% ctx(missing) %>}
    """)
    state = Driver(flow).start()
    assert flow.status(state) == "failed"
    assert flow.errors(state)[0]["task_id"] == "t"
    assert "'missing' is not defined" in flow.errors(state)[0]["message"]


def test_task_status_function_and_task_states():
    flow = conductor("""
        version: 1.0
        tasks:
          a:
            action: core.echo
            next: [{do: b}]
          b:
            action: core.echo status=<% task_status(a) %> other={{ task_status('c') }}
          c: {action: core.echo}
    """)
    driver = Driver(flow)
    driver.start()
    b = next(r for r in driver.requests if r.task == "b")
    assert b.input["status"] == "succeeded"
    assert b.input["other"] in ("succeeded", "running")


def test_retry_command_literal_items_and_delay_expression():
    flow = conductor("""
        version: 1.0
        vars:
          - wait: 1.5
        tasks:
          poll:
            action: core.http
            delay: <% ctx(wait) * 2 %>
            next:
              - when: <% result().ready = false %>
                do: retry
              - when: <% result().ready %>
                do: each
          each:
            with: [x, y]
            action: core.echo v=<% item() %>
    """)
    seen = []

    def outcome(request):
        seen.append((request.key, request.delay, request.input))
        return "succeeded", {"ready": len(seen) >= 3}

    state = Driver(flow, outcome).start()
    assert seen == [("poll", 3.0, {}), ("poll~1", None, {}), ("poll~2", None, {}),
                    ("each[0]", None, {"v": "x"}), ("each[1]", None, {"v": "y"})]
    assert flow.status(state) == "succeeded"


def test_the_state_is_plain_json():
    flow = conductor(PARALLEL_JOIN)
    state = flow.start({})
    flow.next_requests(state)
    assert roundtrip(state) == state


def test_a_halt_stops_new_items_and_the_items_task_ends_when_its_running_items_end():
    flow = conductor("""
        version: 1.0
        tasks:
          setup: {next: [{do: [fan, bad]}]}
          fan: {with: {items: "<% range(10) %>", concurrency: 2}, action: core.echo}
          bad: {action: core.local}
    """)
    state = flow.start({})
    assert [r.key for r in flow.next_requests(state)] == ["fan[0]", "fan[1]", "bad"]
    flow.task_ended(state, "bad", "failed", None, "exit 1")
    flow.task_ended(state, "fan[0]", "succeeded", 0)
    assert flow.next_requests(state) == []  # no fan[2]: the workflow is failing
    assert flow.status(state) == "running"
    flow.task_ended(state, "fan[1]", "succeeded", 1)
    assert flow.status(state) == "failed"
    assert flow.task_states(state)["fan"] == "canceled"


def test_a_canceled_item_cancels_the_workflow():
    flow = conductor("""
        version: 1.0
        tasks:
          fan: {with: "<% [1, 2, 3] %>", action: core.echo}
    """)
    state = flow.start({})
    assert len(flow.next_requests(state)) == 3
    flow.task_ended(state, "fan[1]", "canceled", None)
    flow.task_ended(state, "fan[0]", "succeeded", None)
    assert flow.status(state) == "running"
    flow.task_ended(state, "fan[2]", "succeeded", None)
    assert flow.status(state) == "canceled"
