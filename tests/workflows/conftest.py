"""Workflow fixtures: the ``wftest`` pack (tests/workflows/packs/wftest, written as a StackStorm
pack writes its Orquesta workflows) registered from its files and shipped to the worker."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.worker import readable_by_all

PACKS = Path(__file__).parent / "packs"


@pytest.fixture
def wf_pack(app, committed_db, worker_packs_path, core_pack):
    """Register ``wftest`` (and core) from the worker's PACKS_PATH, as a deploy ships them:
    the web side reads the same files (a rerun from a task reads the workflow)."""
    from app.services.pack_loader import register_pack

    shutil.copytree(PACKS / "wftest", worker_packs_path / "wftest", dirs_exist_ok=True)
    readable_by_all(worker_packs_path / "wftest")
    saved = app.config["PACKS_PATH"]
    app.config["PACKS_PATH"] = str(worker_packs_path)
    try:
        with app.app_context():
            register_pack("wftest")
            committed_db.commit()
        yield "wftest"
    finally:
        app.config["PACKS_PATH"] = saved
