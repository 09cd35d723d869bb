"""Pack registration fixtures: a temporary PACKS_PATH holding copies of real packs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.config import ROOT

FIXTURES = Path(__file__).parent / "fixtures"


class PacksDir:
    """A PACKS_PATH in tmp_path that tests fill and change: ``packs_dir.add("core")``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, name: str, as_name: str | None = None) -> Path:
        """Copy the repository's pack (packs/<name>) or a test fixture pack into PACKS_PATH."""
        source = ROOT / "packs" / name if (ROOT / "packs" / name).is_dir() else FIXTURES / name
        return Path(shutil.copytree(source, self.root / (as_name or name)))

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


@pytest.fixture
def packs_dir(app, tmp_path, monkeypatch) -> PacksDir:
    root = tmp_path / "packs"
    root.mkdir()
    monkeypatch.setitem(app.config, "PACKS_PATH", str(root))
    return PacksDir(root)


def register(api, *packs: str):
    """POST /api/v1/packs/register for these packs (every pack without arguments)."""
    return api.post("/api/v1/packs/register", json={"packs": list(packs)} if packs else {})
