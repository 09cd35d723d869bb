"""POST /packs/register with names the file system cannot look up: a 422 naming `packs`,
nothing registered — a name part longer than 255 bytes used to answer 500 (ENAMETOOLONG)."""

from __future__ import annotations

import pytest

from app.models import Action, Pack
from tests.hardening.helpers import assert_error


@pytest.mark.parametrize("raw", [
    '{"packs": ["' + "0" * 1000 + '"]}',
    '{"packs": ["core/' + "x" * 300 + '"]}',
    '{"packs": ["\\ud800"]}',
])
def test_a_name_no_file_system_can_hold_is_a_422(api, count_rows, raw):
    before = count_rows(Pack, Action)
    response = api.post("/api/v1/packs/register", data=raw, headers={"Content-Type": "application/json"})
    body = assert_error(response, 422)
    assert "packs" in body["errors"]
    assert count_rows(Pack, Action) == before
