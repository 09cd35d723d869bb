"""python-script: StackStorm-style Action classes run in a child process."""

from __future__ import annotations

import textwrap

from tasks.runners.base import CANCELED, FAILED, SUCCEEDED, TIMEOUT
from tasks.runners.registry import get_runner
from tests.runners.conftest import gone

RUNNER = get_runner("python-script")


def action_file(tmp_path, name: str, source: str) -> str:
    path = tmp_path / "pack" / "actions" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return name


ST2_ACTION = """
    from st2common.runners.base_action import Action


    class Check(Action):
        def run(self, host, port=22):
            self.logger.info("checking %s", host)
            print("config says", self.config["region"])
            if host == "down.example":
                return (False, {"host": host, "reachable": False})
            return {"host": host, "port": port, "region": self.config["region"]}
"""


def test_stackstorm_action_succeeds_with_config_and_logger(make_ctx, log, tmp_path):
    entry = action_file(tmp_path, "check.py", ST2_ACTION)
    ctx = make_ctx("python-script", {"host": "web.example", "timeout": 30}, entry_point=entry,
                   config={"region": "eu"})
    result = RUNNER.run(ctx)
    assert result.status == SUCCEEDED, result
    assert result.result["result"] == {"host": "web.example", "port": 22, "region": "eu"}
    assert result.result["exit_code"] == 0
    assert ("stdout", "config says eu") in log.lines
    assert ("stderr", "INFO actions.python.Check: checking web.example") in log.lines


def test_returning_false_tuple_fails_with_the_result(make_ctx, tmp_path):
    entry = action_file(tmp_path, "check.py", ST2_ACTION)
    result = RUNNER.run(make_ctx("python-script", {"host": "down.example"}, entry_point=entry, config={"region": "eu"}))
    assert result.status == FAILED
    assert result.result["result"] == {"host": "down.example", "reachable": False}
    assert result.error == "The action reported that it failed."


def test_an_exception_fails_with_message_and_traceback(make_ctx, log, tmp_path):
    entry = action_file(tmp_path, "boom.py", """
        class Boom:
            def run(self, **params):
                raise RuntimeError("disk full")
    """)
    result = RUNNER.run(make_ctx("python-script", {}, entry_point=entry))
    assert result.status == FAILED
    assert result.error == "RuntimeError: disk full"
    stderr = log.of("stderr")
    assert stderr[0] == "Traceback (most recent call last):" and stderr[-1] == "RuntimeError: disk full"


def test_prints_stream_while_running(make_ctx, log, tmp_path):
    flag = tmp_path / "first-seen"
    log.on("first", flag.touch)
    entry = action_file(tmp_path, "stream.py", f"""
        import os, time

        class Stream:
            def run(self):
                print("first")
                while not os.path.exists({str(flag)!r}):
                    time.sleep(0.05)
                print("second")
                return "done"
    """)
    result = RUNNER.run(make_ctx("python-script", {}, entry_point=entry, timeout=60))
    assert result.status == SUCCEEDED and result.result["result"] == "done"
    assert log.of("stdout") == ["first", "second"]


def test_parameters_reach_the_action_by_stdin_only(make_ctx, tmp_path):
    entry = action_file(tmp_path, "peek.py", """
        import os, sys

        class Peek:
            def run(self, password):
                argv = open("/proc/self/cmdline", "rb").read().decode()
                env = open("/proc/self/environ", "rb").read().decode()
                return {"in_argv": password in argv, "in_env": password in env, "got": password,
                        "stdin_closed": sys.stdin.read() == ""}
    """)
    result = RUNNER.run(make_ctx("python-script", {"password": "hunter2-secret"}, entry_point=entry,
                                 schema={"password": {"type": "string", "secret": True}}))
    assert result.result["result"] == {"in_argv": False, "in_env": False, "got": "hunter2-secret",
                                       "stdin_closed": True}


def test_action_service_reads_the_seeded_datastore(make_ctx, tmp_path):
    entry = action_file(tmp_path, "kv.py", """
        from st2common.runners.base_action import Action

        class Kv(Action):
            def run(self):
                self.action_service.set_value("counter", 2)
                return {"local": self.action_service.get_value("token"),
                        "global": self.action_service.get_value("shared", local=False),
                        "counter": self.action_service.get_value("counter"),
                        "missing": self.action_service.get_value("nope")}
    """)
    ctx = make_ctx("python-script", entry_point=entry, datastore={"acme:token": "t1", "shared": "s"})
    assert RUNNER.run(ctx).result["result"] == {"local": "t1", "global": "s", "counter": 2, "missing": None}


def test_helpers_next_to_the_action_and_in_actions_lib_import(make_ctx, tmp_path):
    action_file(tmp_path, "lib/helper.py", "def greet(name):\n    return 'hello ' + name\n")
    entry = action_file(tmp_path, "greet.py", """
        from helper import greet

        class Greet:
            def run(self, name):
                return greet(name)
    """)
    assert RUNNER.run(make_ctx("python-script", {"name": "ada"}, entry_point=entry)).result["result"] == "hello ada"


def test_unusable_files_fail_clearly(make_ctx, tmp_path):
    two = action_file(tmp_path, "two.py", "class A:\n    def run(self): pass\nclass B:\n    def run(self): pass\n")
    result = RUNNER.run(make_ctx("python-script", entry_point=two))
    assert result.status == FAILED
    assert result.error == "TypeError: the file must define exactly one action class with run(); found: A, B"
    exits = action_file(tmp_path, "exits.py", "import os\nclass A:\n    def run(self):\n        os._exit(0)\n")
    result = RUNNER.run(make_ctx("python-script", entry_point=exits))
    assert result.status == FAILED
    assert result.error == "The action reported no result. The process exited with code 0."
    not_json = action_file(tmp_path, "notjson.py", "class A:\n    def run(self):\n        return {(1, 2): 3}\n")
    result = RUNNER.run(make_ctx("python-script", entry_point=not_json))
    assert result.status == FAILED and result.error.startswith("The result is not JSON")


def test_timeout_and_cancel_kill_the_child_processes(make_ctx, log, tmp_path):
    entry = action_file(tmp_path, "slow.py", """
        import os, subprocess, time

        class Slow:
            def run(self):
                child = subprocess.Popen(["sleep", "300"])
                print(f"pids={os.getpid()},{child.pid}", flush=True)
                print("ready", flush=True)
                time.sleep(300)
    """)
    result = RUNNER.run(make_ctx("python-script", entry_point=entry, timeout=2))
    assert result.status == TIMEOUT
    first = [int(p) for p in log.values("pids=")[0].split(",")]
    assert gone(first)

    log.lines.clear()
    ready = []
    log.on("ready", lambda: ready.append(True))
    result = RUNNER.run(make_ctx("python-script", entry_point=entry, canceled=lambda: bool(ready), timeout=120))
    assert result.status == CANCELED
    second = [int(p) for p in log.values("pids=")[0].split(",")]
    assert gone(second, within=5)
