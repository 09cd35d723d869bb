"""``python -m app.cli register-packs``: the command the release step and operators run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from sqlalchemy import select

from app.config import ROOT
from app.models import Action, Pack, Rule
from tests.packs.conftest import FIXTURES


def run_cli(packs_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PACKS_PATH": str(packs_path)}
    return subprocess.run([sys.executable, "-m", "app.cli", "register-packs", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_register_packs_command(committed_db, tmp_path):
    packs = tmp_path / "packs"
    shutil.copytree(ROOT / "packs" / "core", packs / "core")
    shutil.copytree(FIXTURES / "acme", packs / "acme")

    done = run_cli(packs, "core", "acme")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("pack core 1.0.0 (new, from core/): triggers 6 created")
    assert lines[1].startswith("pack acme 0.1.0 (new, from acme/): triggers 2 created")
    committed_db.remove()
    action_ids = dict(committed_db.execute(select(Action.ref, Action.id).where(Action.pack_name == "acme")).all())
    assert set(action_ids) == {"acme.hello", "acme.deploy"}
    assert committed_db.scalar(select(Pack.path).where(Pack.name == "acme")) == "acme"

    # Every pack of PACKS_PATH without arguments; again, nothing changes.
    done = run_cli(packs)
    assert done.returncode == 0, done.stderr
    assert "pack acme 0.1.0 (updated, from acme/): triggers 0 created, 0 updated, 2 unchanged" in done.stdout
    committed_db.remove()
    assert dict(committed_db.execute(select(Action.ref, Action.id).where(Action.pack_name == "acme")).all()) == action_ids


def test_register_packs_command_fails_on_a_broken_pack_and_writes_nothing(committed_db, tmp_path):
    packs = tmp_path / "packs"
    shutil.copytree(ROOT / "packs" / "core", packs / "core")
    shutil.copytree(FIXTURES / "acme", packs / "acme")
    (packs / "acme" / "rules" / "page_on_alert.yaml").write_text("name: page_on_alert\naction: {ref: acme.hello}\n")

    done = run_cli(packs)
    assert done.returncode == 1
    assert "error: Pack 'acme' (from acme/) has 1 problem(s); nothing was registered." in done.stderr
    assert "rules/page_on_alert.yaml: {'trigger': ['Missing required field.']}" in done.stderr
    committed_db.remove()
    assert committed_db.scalars(select(Pack.name)).all() == []
    assert committed_db.scalars(select(Rule.ref)).all() == []

    done = run_cli(packs, "../elsewhere")
    assert done.returncode == 1
    assert "packs: [\"'../elsewhere' may not contain '..'; name a directory inside PACKS_PATH.\"]" in done.stderr
