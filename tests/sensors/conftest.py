"""A real beat started from the Procfile's line, and helpers reading the events it causes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app.config import ROOT
from app.models import Event
from tests.worker import WORKER_ENV, procfile_command, readable_by_all, stop_group


def start_beat(log_path: Path, packs_path: Path) -> subprocess.Popen:
    env = {**os.environ, **WORKER_ENV, "PACKS_PATH": str(packs_path)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.defpath)}"  # the venv's celery
    with open(log_path, "ab") as log:
        return subprocess.Popen(["sh", "-c", procfile_command("beat")], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def beats(tmp_path, worker_packs_path, celery_worker):
    """Start beats with ``beats.start(name)``; all are stopped at the end."""
    started: list[subprocess.Popen] = []

    class Beats:
        def start(self, name: str = "beat") -> subprocess.Popen:
            proc = start_beat(tmp_path / f"{name}.log", worker_packs_path)
            started.append(proc)
            return proc

        def running(self) -> list[subprocess.Popen]:
            return [proc for proc in started if proc.poll() is None]

        def log(self, name: str = "beat") -> str:
            return (tmp_path / f"{name}.log").read_text(errors="replace")

    yield Beats()
    for proc in started:
        if proc.poll() is None:
            stop_group(proc)


@pytest.fixture
def worker_pack(app, committed_db, worker_packs_path, monkeypatch):
    """Write a pack into the worker's PACKS_PATH and register it: ``worker_pack(name, {path: text})``."""
    from app.services.pack_loader import register_pack

    monkeypatch.setitem(app.config, "PACKS_PATH", str(worker_packs_path))

    def write(name: str, files: dict[str, str | None]) -> None:
        for relative, text in files.items():
            path = worker_packs_path / name / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if text is None:
                path.unlink()  # None removes the file
            else:
                path.write_text(text)
        readable_by_all(worker_packs_path / name)
        with app.app_context():
            register_pack(name)
            committed_db.commit()

    return write


def events_of(session, source: str) -> list[Event]:
    session.rollback()  # a fresh snapshot: other processes commit meanwhile
    return list(session.scalars(select(Event).where(Event.source == source).order_by(Event.id)))
