"""What the action and sensor wrappers share inside their child process (this folder is on
their ``sys.path``, and copied with them when the checkout is private)."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any


def load_module(path: str, prefix: str) -> Any:
    """Import the pack file ``path`` under a module name of its own (``<prefix>_<stem>``)."""
    name = f"{prefix}_" + "".join(c if c.isalnum() else "_" for c in os.path.basename(path)[:-3])
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def hand_over(api: Any) -> dict[str, str]:
    """The run's way to the keys API, also where StackStorm code looks for it: ``ST2_AUTH_TOKEN``
    and ``ST2_API_URL`` in ``os.environ``. Set here, in the process (it came on stdin), they are
    not in ``/proc/<pid>/environ``; processes the action starts inherit them, as its own."""
    if not (isinstance(api, dict) and api.get("url") and api.get("token")):
        return {}
    os.environ["ST2_AUTH_TOKEN"], os.environ["ST2_API_URL"] = api["token"], api["url"]
    return {"url": api["url"], "token": api["token"]}
