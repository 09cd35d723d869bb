"""Attacks on the worker from action code, by an operator who may only execute actions.

Each test runs what an attacker would through the API and the real worker, then asserts
the attack got nothing: no secret in what the action printed, no forged token accepted,
no process or file left behind. The suite runs as root (CI): the worker then gives each
execution its own uid. docs/security.md says how to run the same-user case.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from urllib.parse import urlsplit

import jwt
import psutil
import pytest

from tasks.runners.isolation import make_non_dumpable
from tests.worker import FLOWER_AUTH, wait_for, wait_until_done, wait_until_status

ROOT_RUN = os.geteuid() == 0
DUMP_ALL = r"""
for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do
  tr '\0' '\n' < "$f" 2>/dev/null
done
cat /proc/$PPID/environ /proc/$PPID/mem /proc/1/environ 2>&1 | head -c 2000
ls -l /proc/$PPID/fd 2>&1 | head -5
"""


def worker_secrets() -> dict[str, str]:
    """What the worker holds that would own the platform if an action read it."""
    redis_password = urlsplit(os.environ["REDIS_URL"]).password
    found = {"SECRET_KEY": os.environ["SECRET_KEY"], "VAULT_TOKEN": os.environ["VAULT_TOKEN"]}
    if redis_password:
        found["redis password"] = redis_password
    return found


def shell_action(make_action, ref: str = "attack.shell") -> str:
    return make_action(ref, "local-shell-cmd", parameters={"cmd": {"type": "string", "required": True}})


def run(api, ref: str, cmd: str, timeout: float = 60) -> dict:
    created = api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"cmd": cmd}})
    assert created.status_code == 201, created.get_json()
    return wait_until_done(api, created.get_json()["id"], timeout)


def everything_shown(api, execution: dict) -> str:
    """The execution as the API shows it, with its whole log."""
    logs = api.get(f"/api/v1/executions/{execution['id']}/logs", query_string={"limit": 1000}).get_json()
    return json.dumps(execution) + "\n" + "\n".join(line["line"] for line in logs)


def test_action_cannot_read_the_workers_environment_memory_or_files(operator_api, make_action):
    ref = shell_action(make_action)

    done = run(operator_api, ref, DUMP_ALL)

    shown = everything_shown(operator_api, done)
    assert done["status"] == "succeeded"
    assert "Permission denied" in shown  # it tried, and the kernel said no
    for name, value in worker_secrets().items():
        assert value not in shown, f"the action read the worker's {name}"
    assert "DATABASE_URL=" not in shown


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_nothing_an_action_reads_forges_a_token(operator_api, worker_api, make_action, app):
    ref = shell_action(make_action)
    done = run(operator_api, ref, DUMP_ALL)
    candidates = {part for line in everything_shown(operator_api, done).splitlines()
                  for part in (line, line.partition("=")[2]) if len(part) >= 16}
    real = worker_api.headers["Authorization"].split()[1]
    claims = jwt.decode(real, options={"verify_signature": False})

    def forged_with(key: str) -> str:
        return jwt.encode(claims, key, algorithm="HS256")

    def accepted(token: str) -> bool:
        return operator_api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    def valid(token: str) -> bool:  # the signature check the API makes, without a request each
        try:
            jwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"], options={"verify_exp": False})
        except jwt.InvalidTokenError:
            return False
        return True

    # The forgery itself works: with the signing key it would have owned the platform.
    assert accepted(forged_with(app.config["JWT_SECRET_KEY"]))
    assert candidates, "the attack read nothing at all: the test would prove nothing"
    assert not [key for key in candidates if valid(forged_with(key))]
    assert not accepted(forged_with(os.environ["SECRET_KEY"]))


def test_python_action_cannot_read_its_parent(operator_api, make_action, tmp_path):
    (tmp_path / "actions").mkdir()
    (tmp_path / "actions" / "steal.py").write_text(inspect.cleandoc('''
        import os
        from st2common.runners.base_action import Action

        class Steal(Action):
            def run(self):
                found = {"own": dict(os.environ)}
                for path in (f"/proc/{os.getppid()}/environ", "/proc/1/environ"):
                    try:
                        with open(path, "rb") as file:
                            found[path] = file.read().decode(errors="replace")
                    except OSError as exc:
                        found[path] = f"refused: {exc.strerror}"
                return found
    '''))
    ref = make_action("attack.steal", "python-script", entry_point="steal.py", pack_path=str(tmp_path))

    created = operator_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {}}).get_json()
    done = wait_until_done(operator_api, created["id"])

    assert done["status"] == "succeeded", done
    found = done["result"]["result"]
    assert all(value.startswith("refused") for key, value in found.items() if key != "own"), found
    shown = json.dumps(done)
    for name, value in worker_secrets().items():
        assert value not in shown, f"the python action read the worker's {name}"
    assert not [name for name in found["own"] if name.startswith(("PYTHON", "LD_"))]


def test_concurrent_executions_run_as_different_uids_and_cannot_read_each_other(
        operator_api, worker_api, make_action, tmp_path):
    (tmp_path / "actions").mkdir()
    script = tmp_path / "actions" / "hold.sh"
    script.write_text('#!/bin/sh\nid -u\necho holding\nsleep 20\n')
    script.chmod(0o755)
    victim = make_action("victim.hold", "local-shell-script", entry_point="hold.sh", pack_path=str(tmp_path),
                         parameters={"token": {"type": "string", "secret": True, "required": True}})
    secret = "victim-secret-" + os.urandom(8).hex()
    held = worker_api.post(f"/api/v1/actions/{victim}/execute", json={"parameters": {"token": secret}}).get_json()

    def victim_holding():
        logs = worker_api.get(f"/api/v1/executions/{held['id']}/logs").get_json()
        lines = [line["line"] for line in logs]
        return lines if "holding" in lines else None

    victim_uid = int(wait_for(victim_holding, 30)[0])
    ref = shell_action(make_action)
    done = run(operator_api, ref, "id -u; " + DUMP_ALL + "\nls -la /tmp/patchbay-exec-* 2>&1 | head -20")
    worker_api.post(f"/api/v1/executions/{held['id']}/cancel")

    shown = everything_shown(operator_api, done)
    attacker_uid = int(done["result"]["stdout"].split()[0])
    wait_until_status(worker_api, held["id"], {"canceled"})
    if not ROOT_RUN:
        # Same-user mode: documented in docs/security.md, executions share the worker's uid.
        assert attacker_uid == victim_uid == os.geteuid()
        return
    assert 0 < attacker_uid != victim_uid > 0
    assert secret not in shown


def test_nothing_of_an_execution_survives_into_the_next_use_of_its_uid(operator_api, make_action):
    ref = shell_action(make_action)
    marker = "leftover-" + os.urandom(6).hex()

    done = run(operator_api, ref,
               f"id -u; setsid sh -c 'exec -a {marker} sleep 300' </dev/null >/dev/null 2>&1 & "
               f"echo keep > /tmp/{marker}; mkdir /dev/shm/{marker}; echo started")

    assert done["status"] == "succeeded", done
    # The escaped process (its own session, out of the action's process group) is gone.
    assert not [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
    if ROOT_RUN:
        uid = int(done["result"]["stdout"].split()[0])
        assert uid >= 1000
        assert not [p for p in psutil.process_iter(["uids", "status"]) if p.info["uids"]
                    and p.info["uids"].real == uid and p.info["status"] != psutil.STATUS_ZOMBIE]
        # What it left where every user may write is gone before the uid serves anyone else.
        assert not os.path.exists(f"/tmp/{marker}") and not os.path.exists(f"/dev/shm/{marker}")


def test_action_cannot_read_private_directories(operator_api, make_action, tmp_path):
    bait = tmp_path / "bait.txt"
    bait.write_text("pytest-private-" + os.urandom(6).hex())
    services = [p for p in os.listdir("/tmp") if p.startswith("patchbay-services-")]
    ref = shell_action(make_action)
    paths = [str(bait), "/root", *(f"/tmp/{p}" for p in services)]

    done = run(operator_api, ref, "id -u; " + "; ".join(f"ls {p} 2>&1; cat {p} 2>&1" for p in paths)
               + "; cat /tmp/patchbay-services-*/* 2>&1")

    shown = everything_shown(operator_api, done)
    if not ROOT_RUN:
        return  # same-user mode: the worker's user reads its own files (docs/security.md)
    assert bait.read_text() not in shown
    assert shown.count("Permission denied") >= len(paths)
    for name, value in worker_secrets().items():
        assert value not in shown, f"the action read the {name} from a data directory"


def test_service_credentials_are_on_no_command_line(operator_api, make_action, flower):
    ref = shell_action(make_action)

    done = run(operator_api, ref, "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done")

    shown = everything_shown(operator_api, done)
    assert "celery" in shown and "flower" in shown  # Flower runs, and its command line was read
    assert FLOWER_AUTH[1] not in shown
    assert os.environ["VAULT_TOKEN"] not in shown
    assert urlsplit(os.environ["REDIS_URL"]).password not in shown


def test_redis_refuses_an_action_without_its_password(operator_api, make_action):
    port = urlsplit(os.environ["REDIS_URL"]).port
    ref = shell_action(make_action)

    done = run(operator_api, ref, f"""bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} || exit 9
printf "PING\\r\\nKEYS *\\r\\nCONFIG GET requirepass\\r\\n" >&3
for i in 1 2 3; do read -r -t 5 line <&3; echo "answer: $line"; done'""")

    answers = re.findall(r"answer: (.*)", done["result"]["stdout"])
    assert len(answers) == 3, done
    assert all(answer.startswith("-NOAUTH") for answer in answers), answers


def test_non_dumpable_process_is_closed_to_its_own_user(tmp_path):
    """The same-user mode's defence, checked as the kernel applies it: two processes of one
    unprivileged user; the one that called make_non_dumpable() keeps its environment."""
    if not ROOT_RUN:
        return  # starting processes as another user needs root; the worker itself is checked below
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    holder = (f"PR_SET_DUMPABLE = 4\n{inspect.getsource(make_non_dumpable)}\n"
              "import sys, time\nif sys.argv[1] == 'harden': make_non_dumpable()\n"
              "print('ready', flush=True)\ntime.sleep(30)\n")
    secret = "held-" + os.urandom(6).hex()
    readings = {}
    for mode in ("harden", "plain"):
        proc = subprocess.Popen([*nobody, "/usr/bin/python3", "-c", holder, mode], stdout=subprocess.PIPE,
                                env={"HELD": secret, "PATH": "/usr/bin:/bin"}, cwd="/")
        try:
            assert proc.stdout.readline().strip() == b"ready"
            reader = subprocess.run([*nobody, "cat", f"/proc/{proc.pid}/environ"], capture_output=True, cwd="/")
            readings[mode] = (reader.returncode, reader.stdout)
        finally:
            proc.kill()
            proc.wait()
    assert secret.encode() in readings["plain"][1]  # without it, the same user reads the secret
    assert readings["harden"][0] != 0 and secret.encode() not in readings["harden"][1]


def test_pool_processes_start_actions_as_another_user(celery_worker, operator_api, make_action):
    ref = shell_action(make_action)
    done = run(operator_api, ref, "id -u; id -G; cat /proc/self/status | grep -E '^(NoNewPrivs|CapEff)'")
    out = done["result"]["stdout"].split("\n")
    uid, groups = int(out[0]), out[1].split()
    if ROOT_RUN:
        assert uid in range(61000, 62000) and groups == [str(uid)]
        assert "CapEff:\t0000000000000000" in done["result"]["stdout"]
    assert "NoNewPrivs:\t1" in done["result"]["stdout"]
    # ... and the worker's own pool processes are still the worker's user.
    assert all(child.uids().real == os.geteuid() for child in celery_worker.pool_children())


def test_a_secret_rendered_into_a_command_is_on_no_command_line(operator_api, worker_api, make_action):
    victim = make_action("victim.cmd", "local-shell-cmd", parameters={
        "token": {"type": "string", "secret": True, "required": True},
        "cmd": {"default": "echo {{ token }} >/dev/null; echo holding; sleep 20", "immutable": True}})
    secret = "cmd-secret-" + os.urandom(8).hex()
    held = worker_api.post(f"/api/v1/actions/{victim}/execute", json={"parameters": {"token": secret}}).get_json()
    wait_for(lambda: "holding" in [line["line"] for line in
                                   worker_api.get(f"/api/v1/executions/{held['id']}/logs").get_json()], 30)
    ref = shell_action(make_action)

    done = run(operator_api, ref, "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done")
    worker_api.post(f"/api/v1/executions/{held['id']}/cancel")

    shown = everything_shown(operator_api, done)
    assert "command.sh" in shown  # the victim's shell was seen, running its private file
    assert secret not in shown
    wait_until_status(worker_api, held["id"], {"canceled"})


def test_the_procfiles_worker_holds_no_signing_key_or_admin_password(app, tmp_path):
    """Heroku gives every process type the same config vars: the Procfile's worker line
    drops what a worker does not need, so no action can find it there at all."""
    from tests.worker import procfile_command, stop_group

    env = {**os.environ, "SECRET_KEY": "s" * 40, "PATCHBAY_ADMIN_PASSWORD": "admin-pass-" + os.urandom(4).hex(),
           "FLOWER_BASIC_AUTH": "ops:flower-" + os.urandom(4).hex(), "WORKER_CONCURRENCY": "1",
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    command = procfile_command("worker").replace("worker@%h", f"procfile-{os.getpid()}@%h")
    with open(tmp_path / "worker.log", "wb") as log:
        proc = subprocess.Popen(["/bin/sh", "-c", command], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_for(lambda: "ready" in (tmp_path / "worker.log").read_text(errors="replace"), 60)
        # By now the shell and env have exec'd or wait: the Python processes are the worker's.
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True) + [psutil.Process(proc.pid)]
                   if p.name().startswith(("python", "celery"))]
        assert workers
        for worker in workers:
            held = worker.environ()
            assert held["DATABASE_URL"] == env["DATABASE_URL"]  # it did get the rest of its configuration
            assert not {"SECRET_KEY", "PATCHBAY_ADMIN_PASSWORD", "FLOWER_BASIC_AUTH"} & set(held)
    finally:
        stop_group(proc)
