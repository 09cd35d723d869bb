"""local-shell-script: arguments and environment as StackStorm passes them, pack confinement."""

from __future__ import annotations

import os
import stat

from tasks.runners.base import FAILED, SUCCEEDED, TIMEOUT
from tasks.runners.registry import get_runner
from tests.runners.conftest import gone

RUNNER = get_runner("local-shell-script")
SCHEMA = {
    "name": {"type": "string"},
    "verbose": {"type": "boolean"},
    "quiet": {"type": "boolean"},
    "tags": {"type": "array", "position": 1},
    "first": {"type": "string", "position": 0},
    "empty": {"type": "string"},
    "cwd": {"type": "string"}, "env": {"type": "object"}, "timeout": {"type": "integer"},
}


def write_script(path, text: str, executable: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if executable:
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_named_then_positional_arguments_and_environment(make_ctx, log, tmp_path):
    write_script(tmp_path / "pack" / "actions" / "show.sh",
                 '#!/bin/sh\nfor arg in "$@"; do echo "arg:$arg"; done\n'
                 'echo "env:$ST2_ACTION_NAME|$PATCHBAY_PARAM_TAGS|$EXTRA"\npwd\n')
    params = {"name": "it's $(me)", "verbose": True, "quiet": False, "tags": ["a", "b"], "first": "one",
              "empty": "", "env": {"EXTRA": "x"}, "timeout": 30}
    result = RUNNER.run(make_ctx("local-shell-script", params, entry_point="actions/show.sh", schema=SCHEMA))
    assert result.status == SUCCEEDED, result
    assert log.values("arg:") == ["--name=it's $(me)", "--verbose", "one", "a,b"]
    assert log.values("env:") == ['it\'s $(me)|["a", "b"]|x']
    assert log.of("stdout")[-1] == os.path.realpath(tmp_path / "pack" / "actions")  # the script's directory


def test_stackstorm_entry_point_relative_to_actions(make_ctx, log, tmp_path):
    write_script(tmp_path / "pack" / "actions" / "hi.sh", "echo hi from actions\n", executable=False)
    result = RUNNER.run(make_ctx("local-shell-script", entry_point="hi.sh"))
    assert result.status == SUCCEEDED  # not executable: run through bash
    assert result.result["stdout"] == "hi from actions"


def test_failure_exit_code(make_ctx, tmp_path):
    write_script(tmp_path / "pack" / "fail.sh", "#!/bin/sh\necho nope >&2\nexit 7\n")
    result = RUNNER.run(make_ctx("local-shell-script", entry_point="fail.sh"))
    assert result.status == FAILED
    assert result.result["return_code"] == 7 and result.result["stderr"] == "nope"


def test_entry_points_outside_the_pack_are_refused(make_ctx, tmp_path):
    write_script(tmp_path / "outside.sh", "#!/bin/sh\ntouch " + str(tmp_path / "ran") + "\n")
    (tmp_path / "pack" / "link.sh").symlink_to(tmp_path / "outside.sh")
    for entry_point in ("../outside.sh", "link.sh", str(tmp_path / "outside.sh")):
        result = RUNNER.run(make_ctx("local-shell-script", entry_point=entry_point))
        assert result.status == FAILED
        assert result.error == f"The entry_point {entry_point!r} leads outside the pack."
    assert not (tmp_path / "ran").exists()
    missing = RUNNER.run(make_ctx("local-shell-script", entry_point="nope.sh"))
    assert missing.error == "The entry_point 'nope.sh' is not a file in the pack 'acme'."


def test_script_timeout_kills_its_children(make_ctx, log, tmp_path):
    write_script(tmp_path / "pack" / "slow.sh", "#!/bin/sh\nsleep 300 &\necho child=$!\necho self=$$\nwait\n")
    result = RUNNER.run(make_ctx("local-shell-script", entry_point="slow.sh", timeout=1))
    assert result.status == TIMEOUT
    pids = [int(v) for v in log.values("child=") + log.values("self=")]
    assert len(pids) == 2 and gone(pids)
