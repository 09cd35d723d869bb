"""docs/auth.md's role and permission tables are the catalogue's, generated."""

from __future__ import annotations

from app.config import ROOT
from app.security.reference import permissions_table, roles_table


def _block(text: str, name: str) -> str:
    start = text.index(f"<!-- generated: {name}")
    body_start = text.index("\n", start) + 1
    return text[body_start:text.index(f"<!-- end generated: {name} -->")].strip()


def test_the_documented_tables_match_the_catalogue():
    doc = (ROOT / "docs" / "auth.md").read_text()
    assert _block(doc, "roles") == roles_table(), "regenerate with: python -m app.security.reference"
    assert _block(doc, "permissions") == permissions_table(), "regenerate with: python -m app.security.reference"
