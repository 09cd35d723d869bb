"""The registry: every runner type has a runner; noop succeeds at once."""

from __future__ import annotations

import pytest

from app.engine.runner_types import RUNNER_TYPES
from tasks.runners.base import SUCCEEDED
from tasks.runners.registry import get_runner


def test_each_runner_type_resolves():
    for runner_type in RUNNER_TYPES:
        assert get_runner(runner_type).name == runner_type
    with pytest.raises(LookupError, match="no runner for type 'telepathy'"):
        get_runner("telepathy")


def test_noop_succeeds_with_an_empty_result(make_ctx, log):
    result = get_runner("noop").run(make_ctx("noop", {"anything": 1}))
    assert (result.status, result.result, result.error) == (SUCCEEDED, {}, None)
    assert log.lines == []
