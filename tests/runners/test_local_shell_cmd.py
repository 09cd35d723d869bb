"""local-shell-cmd: results, streaming, environment, timeout and cancel of the whole tree."""

from __future__ import annotations

import os

from app.engine.templates import render_parameters, shell_parameters
from tasks.runners.base import CANCELED, FAILED, SUCCEEDED, TIMEOUT
from tasks.runners.registry import get_runner
from tests.runners.conftest import gone

RUNNER = get_runner("local-shell-cmd")


def test_success_gives_output_and_return_code(make_ctx, log):
    result = RUNNER.run(make_ctx("local-shell-cmd", {"cmd": "echo hello; echo oops >&2"}))
    assert result.status == SUCCEEDED
    assert result.result == {"stdout": "hello", "stderr": "oops", "return_code": 0,
                             "succeeded": True, "failed": False}
    assert log.lines == [("stdout", "hello"), ("stderr", "oops")]


def test_nonzero_exit_fails(make_ctx):
    result = RUNNER.run(make_ctx("local-shell-cmd", {"cmd": "echo partial; exit 3"}))
    assert result.status == FAILED
    assert result.result["return_code"] == 3 and result.result["stdout"] == "partial"
    assert result.error == "The process exited with code 3."


def test_only_the_one_last_line_ending_leaves_the_result(make_ctx, log):
    # As StackStorm's strip_shell_chars: one "\n" (or "\r\n") goes, the rest stays; the log
    # still has every line.
    result = RUNNER.run(make_ctx("local-shell-cmd", {"cmd": r"printf 'a\n\n'; printf 'x\r\n' >&2"}))
    assert result.status == SUCCEEDED
    assert (result.result["stdout"], result.result["stderr"]) == ("a\n", "x")
    assert log.of("stdout") == ["a", ""] and log.of("stderr") == ["x"]


def test_missing_cmd_and_bad_cwd_fail_clearly(make_ctx, tmp_path):
    assert RUNNER.run(make_ctx("local-shell-cmd", {})).error == \
        "The local-shell-cmd runner needs a non-empty 'cmd' parameter."
    missing = tmp_path / "nowhere"
    result = RUNNER.run(make_ctx("local-shell-cmd", {"cmd": "pwd", "cwd": str(missing)}))
    assert result.status == FAILED and str(missing) in result.error


def test_lines_stream_while_the_process_runs(make_ctx, log, tmp_path):
    # The command waits for a file that only the log callback creates: if "first" were
    # emitted after the process ended, it would wait until its timeout.
    flag = tmp_path / "first-seen"
    log.on("first", flag.touch)
    cmd = f"echo first; while [ ! -f {flag} ]; do sleep 0.05; done; echo second >&2; printf 'no newline'"
    result = RUNNER.run(make_ctx("local-shell-cmd", {"cmd": cmd}, timeout=60))
    assert result.status == SUCCEEDED
    assert log.lines == [("stdout", "first"), ("stderr", "second"), ("stdout", "no newline")]


def test_undecodable_bytes_and_long_output(make_ctx, log):
    result = RUNNER.run(make_ctx("local-shell-cmd", {"cmd": r"printf 'caf\351\n'; head -c 100000 /dev/zero | tr '\0' x"}))
    assert result.status == SUCCEEDED
    assert log.lines[0] == ("stdout", "caf\ufffd")
    assert "".join(log.of("stdout")[1:]) == "x" * 100000  # all of it in the log
    assert len(result.result["stdout"]) == 64 * 1024 and result.result["truncated"] is True


def test_environment_is_small_and_has_the_action_identity(make_ctx, log):
    os.environ["PATCHBAY_WORKER_ONLY"] = "worker-secret"
    try:
        result = RUNNER.run(make_ctx("local-shell-cmd", {"cmd": "env", "env": {"GREETING": "hi", "COUNT": 3}}))
    finally:
        del os.environ["PATCHBAY_WORKER_ONLY"]
    env = dict(line.split("=", 1) for line in log.of("stdout"))
    assert env["GREETING"] == "hi" and env["COUNT"] == "3"
    assert env["ST2_ACTION_EXECUTION_ID"] == "42" and env["ST2_ACTION_PACK_NAME"] == "acme"
    assert "PATCHBAY_WORKER_ONLY" not in env and "VAULT_TOKEN" not in env and "DATABASE_URL" not in env
    assert result.status == SUCCEEDED


def test_secret_parameters_are_not_emitted(make_ctx, log):
    ctx = make_ctx("local-shell-cmd", {"cmd": "echo done", "token": "s3cr3t-value"},
                   schema={"token": {"type": "string", "secret": True}})
    assert RUNNER.run(ctx).status == SUCCEEDED
    assert not [line for _, line in log.lines if "s3cr3t-value" in line]


TREE = (
    "echo shell=$$; sleep 300 & echo child=$!; "
    "setsid sleep 301 & echo escaped=$!; "                 # left our session and group
    "(setsid sleep 304 & echo orphan=$!); "                # ... and lost its parent at once
    "sh -c 'sleep 302 & echo grandchild=$!; wait' & "
    "sleep 0.2; echo ready; sleep 303"
)


def tree_pids(log) -> list[int]:
    return [int(v) for prefix in ("shell=", "child=", "escaped=", "grandchild=", "orphan=") for v in log.values(prefix)]


def test_timeout_kills_the_whole_tree(make_ctx, log):
    sessions = {}
    log.on("ready", lambda: sessions.update({pid: os.getsid(pid) for pid in tree_pids(log)}))
    result = RUNNER.run(make_ctx("local-shell-cmd", {"cmd": TREE}, timeout=2))
    assert result.status == TIMEOUT
    assert result.error == "The action did not finish within 2 s."
    shell, child, escaped, grandchild, orphan = tree_pids(log)
    # While running: the shell led its own session; two processes had left it, one of
    # them no longer a descendant of anything we started.
    assert sessions[shell] == shell == sessions[child] == sessions[grandchild]
    assert shell != sessions[escaped] and shell != sessions[orphan]
    assert gone([shell, child, escaped, grandchild, orphan])
    assert log.lines[-1][0] == "system" and "killed the process tree" in log.lines[-1][1]


def test_cancel_kills_the_whole_tree(make_ctx, log):
    ready = []
    log.on("ready", lambda: ready.append(True))
    result = RUNNER.run(make_ctx("local-shell-cmd", {"cmd": TREE}, canceled=lambda: bool(ready), timeout=120))
    assert result.status == CANCELED
    assert result.error == "The execution was canceled."
    pids = tree_pids(log)
    assert len(pids) == 5 and gone(pids, within=5)


def test_a_process_ignoring_sigterm_is_killed(make_ctx, log):
    result = RUNNER.run(make_ctx("local-shell-cmd", {"cmd": "trap '' TERM; echo pid=$$; sleep 300 & wait"}, timeout=1))
    assert result.status == TIMEOUT
    assert gone([int(v) for v in log.values("pid=")])


def test_rendered_injection_attempts_do_not_execute(make_ctx, log, tmp_path):
    pwned = tmp_path / "pwned"
    schema = {"message": {"type": "string"}, "cmd": {"type": "string", "default": "printf '%s|' {{ message }}"}}
    attempts = [f"x; touch {pwned}", f"$(touch {pwned})", f"`touch {pwned}`", f"a\ntouch {pwned}",
                f"'; touch {pwned}; echo '", f"&& touch {pwned}", f"| touch {pwned}"]
    for message in attempts:
        params = render_parameters(schema, {"message": message}, {}, shell_quote=shell_parameters("local-shell-cmd"))
        log.lines.clear()
        result = RUNNER.run(make_ctx("local-shell-cmd", params))
        assert result.status == SUCCEEDED
        assert result.result["stdout"] == message + "|"
        assert not pwned.exists(), message
