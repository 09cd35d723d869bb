"""Who an action runs as: own uids (the worker is root), the private directory, what is
left behind, and the secrets that never reach a command line."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from tasks.runners.base import FAILED, SUCCEEDED
from tasks.runners.isolation import (
    SAME_USER,
    UID,
    Isolation,
    IsolationError,
    readable_by_others,
    sandbox,
)
from tasks.runners.python_script import read_outcome
from tasks.runners.registry import get_runner

ROOT_RUN = os.geteuid() == 0
# A range apart from the worker's (tests may run beside a worker using 61000-61999).
OWN = Isolation(UID if ROOT_RUN else SAME_USER, range(62500, 62504))


@pytest.fixture
def shared_pack():
    """A pack directory every user may read, as a deploy ships packs (not pytest's 0700 tmp)."""
    path = Path(tempfile.mkdtemp(prefix="patchbay-test-pack-"))
    path.chmod(0o755)
    (path / "actions").mkdir(mode=0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def live_processes_of(uid: int) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["uids", "status"])
            if p.info["uids"] and p.info["uids"].real == uid and p.info["status"] != psutil.STATUS_ZOMBIE]


def test_each_sandbox_has_its_own_uid_and_private_directory():
    with sandbox(OWN, 1) as first, sandbox(OWN, 2) as second:
        for box in (first, second):
            info = os.stat(box.scratch)
            assert stat.S_IMODE(info.st_mode) == 0o700
            if ROOT_RUN:
                assert info.st_uid == box.uid and box.uid in OWN.uids
        if ROOT_RUN:
            assert first.uid != second.uid
        scratches = (first.scratch, second.scratch)
    assert not any(os.path.exists(path) for path in scratches)


def test_a_uid_is_handed_out_to_one_sandbox_at_a_time():
    if not ROOT_RUN:
        return  # same-user mode has no uids to hand out
    single = Isolation(UID, range(62510, 62511))
    with sandbox(single, 1) as box:
        assert box.uid == 62510
        with pytest.raises(IsolationError, match="every uid of ACTION_UIDS .62510-62510. is in use"):
            with sandbox(single, 2):
                pass
    with sandbox(single, 3) as again:  # released: usable again
        assert again.uid == 62510


def test_whatever_an_execution_leaves_running_or_lying_around_is_gone(make_ctx, log):
    marker = "pb-left-" + os.urandom(4).hex()
    # env -i drops the run token, setsid leaves the process group: only the uid still tells.
    cmd = (f"env -i setsid sh -c 'exec -a {marker} sleep 300' </dev/null >/dev/null 2>&1 & "
           f"echo x > /tmp/{marker}; id -u")
    result = get_runner("local-shell-cmd").run(make_ctx("local-shell-cmd", {"cmd": cmd}, isolation=OWN))
    assert result.status == SUCCEEDED, result
    assert not [p for p in psutil.process_iter(["cmdline", "status"])
                if marker in " ".join(p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE]
    if ROOT_RUN:
        assert not live_processes_of(int(log.of("stdout")[-1]))
        assert not os.path.exists(f"/tmp/{marker}")


def test_the_command_is_not_on_the_shells_command_line(make_ctx, log):
    secret = "s3cret-" + os.urandom(4).hex()
    cmd = f"tr '\\0' ' ' < /proc/$$/cmdline; echo; : {secret}; echo done"
    result = get_runner("local-shell-cmd").run(make_ctx("local-shell-cmd", {"cmd": cmd}, isolation=OWN))
    assert result.status == SUCCEEDED, result
    shown = log.of("stdout")[0]
    assert shown.startswith("/bin/sh ") and secret not in shown


def test_a_scripts_secret_parameter_is_never_an_argument(make_ctx, log, shared_pack):
    script = shared_pack / "actions" / "show.sh"
    script.write_text('#!/bin/sh\necho "args:$*"\necho "env:${ST2_ACTION_TOKEN:-none}"\n'
                      'if [ -n "$PATCHBAY_SECRET_FILE_TOKEN" ]; then echo "file:$(cat "$PATCHBAY_SECRET_FILE_TOKEN")"; fi\n')
    script.chmod(0o755)
    schema = {"token": {"type": "string", "secret": True}, "name": {"type": "string"}}
    ctx = make_ctx("local-shell-script", {"token": "tok-$'x", "name": "n"}, entry_point="show.sh",
                   schema=schema, pack_path=str(shared_pack), isolation=OWN)
    result = get_runner("local-shell-script").run(ctx)
    assert result.status == SUCCEEDED, result
    assert log.values("args:") == ["--name=n"]
    if ROOT_RUN:  # its own uid: the environment is private to it
        assert log.values("env:") == ["tok-$'x"] and log.values("file:") == []
    else:  # the worker's user: in a file only that user may read
        assert log.values("env:") == ["none"] and log.values("file:") == ["tok-$'x"]


def test_a_pack_file_the_actions_user_cannot_read_fails_clearly(make_ctx, tmp_path):
    if not ROOT_RUN:
        return  # the worker's own user reads what the worker reads
    private = tmp_path / "pack" / "actions" / "run.sh"
    private.parent.mkdir(parents=True)
    private.write_text("#!/bin/sh\necho hi\n")
    result = get_runner("local-shell-script").run(
        make_ctx("local-shell-script", {}, entry_point="run.sh", isolation=OWN))
    assert result.status == FAILED
    assert "is not readable by the action's user" in result.error and "chmod -R o+rX" in result.error


def test_python_actions_run_isolated_with_an_interpreter_their_user_can_run(make_ctx, log, shared_pack):
    (shared_pack / "actions" / "who.py").write_text(
        "import os, sys\nfrom st2common.runners.base_action import Action\n"
        "class Who(Action):\n    def run(self):\n"
        "        return {'uid': os.getuid(), 'isolated': sys.flags.isolated, 'exe': sys.executable}\n")
    os.chmod(shared_pack / "actions" / "who.py", 0o644)
    ctx = make_ctx("python-script", {"env": {"PYTHONSTARTUP": "/x"}}, entry_point="who.py",
                   pack_path=str(shared_pack), isolation=OWN,
                   schema={"env": {"type": "object", "default": {"PYTHONSTARTUP": "/x"}}})
    result = get_runner("python-script").run(ctx)
    assert result.status == SUCCEEDED, (result, log.lines)
    found = result.result["result"]
    assert found["isolated"] == 1
    assert found["exe"] == OWN.python_interpreter()
    if ROOT_RUN:
        assert found["uid"] in OWN.uids
        assert readable_by_others(found["exe"], execute=True)


def test_startup_environment_from_a_caller_is_refused_at_run_time(make_ctx):
    for name in ("BASH_ENV", "LD_PRELOAD", "PYTHONWARNINGS", "BASH_FUNC_ls%%", "ENV", "NODE_OPTIONS"):
        result = get_runner("local-shell-cmd").run(
            make_ctx("local-shell-cmd", {"cmd": "true", "env": {name: "/tmp/x"}}, isolation=OWN))
        assert result.status == FAILED
        assert f"The environment variable {name!r} changes how programs start" in result.error


def test_the_outcome_file_is_read_only_as_a_regular_file(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text('{"status": "succeeded", "result": "read through a link"}')
    link = tmp_path / "link.json"
    link.symlink_to(target)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    assert read_outcome(str(link)) is None
    done = threading.Event()
    threading.Thread(target=lambda: (read_outcome(str(fifo)), done.set()), daemon=True).start()
    assert done.wait(5), "reading a FIFO blocked the worker"
    assert read_outcome(str(target)) == {"status": "succeeded", "result": "read through a link"}


def test_a_uid_whose_last_holder_died_is_swept_before_it_is_handed_out():
    if not ROOT_RUN:
        return  # same-user mode has no uids to hand out
    single = Isolation(UID, range(62520, 62521))
    with sandbox(single, 1):
        pass  # leaves the lock file marked clean
    # A holder killed mid-run: its lock file still says dirty, its process runs on.
    lock = next(Path(p) for p in ("/run/patchbay-action-uids/62520", f"{tempfile.gettempdir()}/patchbay-action-uids/62520")
                if os.path.exists(p))
    lock.write_bytes(b"dirty")
    survivor = psutil.Popen(["setpriv", "--reuid=62520", "--regid=62520", "--clear-groups", "sleep", "300"])
    try:
        # Only once setpriv has become the uid is it a process of that uid to sweep.
        deadline = time.monotonic() + 10
        while survivor.uids().real != 62520 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert live_processes_of(62520)
        with sandbox(single, 2):
            assert not live_processes_of(62520)
    finally:
        survivor.kill()
        survivor.wait()


def test_a_uid_that_cannot_be_cleared_keeps_the_runs_outcome_and_is_not_handed_out_again(
        make_ctx, monkeypatch):
    """A process stuck in the kernel can outlive SIGKILL for a while: the run's outcome stands,
    and the uid is refused until a later sweep clears it."""
    if not ROOT_RUN:
        return  # same-user mode has no uids to hand out
    from tasks.runners import isolation

    single = Isolation(UID, range(62530, 62531))
    real = isolation._processes_of
    monkeypatch.setattr(isolation, "SWEEP_PATIENCE", 0.2)
    with sandbox(single, 1):
        pass  # starts clean
    # From now on the uid seems to keep a process that will not die.
    monkeypatch.setattr(isolation, "_processes_of", lambda uid: [2**22 + 1] if uid == 62530 else real(uid))
    result = get_runner("local-shell-cmd").run(make_ctx("local-shell-cmd", {"cmd": "echo ran"}, isolation=single))
    assert result.status == SUCCEEDED and result.result["stdout"] == "ran"
    with pytest.raises(IsolationError, match="survive SIGKILL; it is not handed out"):
        with sandbox(single, 2):
            pass
    monkeypatch.setattr(isolation, "_processes_of", real)  # the stuck process finally exits
    with sandbox(single, 3) as box:
        assert box.uid == 62530
