"""Names read from pack files are checked to their very end: the patterns ended in "$", which
also matches before a trailing newline, so `name: "ok\\n"` registered a ref with a newline."""

from __future__ import annotations

import pytest

from app.models import Action, Pack
from tests.hardening.helpers import assert_error
from tests.packs.conftest import PacksDir


@pytest.fixture
def packs_dir(app, tmp_path, monkeypatch) -> PacksDir:
    root = tmp_path / "packs"
    root.mkdir()
    monkeypatch.setitem(app.config, "PACKS_PATH", str(root))
    return PacksDir(root)


@pytest.mark.parametrize("pack_yaml, action_yaml", [
    ('name: "acme\\n"\nversion: "1.0.0"\n', "name: ok\nrunner_type: noop\n"),
    ('name: acme\nversion: "1.0.0"\n', 'name: "ok\\n"\nrunner_type: noop\n'),
])
def test_a_name_with_a_trailing_newline_in_a_pack_file_is_a_422(api, packs_dir, count_rows, pack_yaml, action_yaml):
    packs_dir.write("acme/pack.yaml", pack_yaml)
    packs_dir.write("acme/actions/ok.yaml", action_yaml)
    before = count_rows(Pack, Action)
    response = api.post("/api/v1/packs/register", json={"packs": ["acme"]})
    assert_error(response, 422)
    assert count_rows(Pack, Action) == before
