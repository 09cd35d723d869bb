"""Runners, one module per runner type; importing this package registers them all."""

from tasks.runners import (  # noqa: F401 - imported for their @register
    http_request,
    local_shell_cmd,
    local_shell_script,
    noop,
    python_script,
)
