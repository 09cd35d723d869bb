"""Which rules on a trigger an event is for: a webhook rule sees only its own url, a timer
rule only its own timer.

The convention, followed by whatever records events:

- a webhook delivery's event has ``source = "webhook:<url>"`` (``webhook_source``); it is for
  the rules whose ``trigger_parameters.url`` is that url (leading and trailing ``/`` ignored);
- a timer tick's event has ``source = timer_source(trigger_ref, parameters)``
  (``"timer:<kind>-<hash of the parameters>"``, app/engine/timers.py); it is for the rules on
  that trigger whose trigger parameters give the same source (rules with the same timer
  parameters share one timer, as in StackStorm);
- any other source (``api``, ``sensor:<ref>``, ``execution:<id>``) is for every rule on the
  trigger: its trigger parameters do not filter it.
"""

from __future__ import annotations

from typing import Any

from app.engine.timers import SOURCE_PREFIX as TIMER_PREFIX
from app.engine.timers import timer_source

WEBHOOK_PREFIX = "webhook:"


def normalize_url(url: str) -> str:
    return url.strip("/")


def webhook_source(url: str) -> str:
    return WEBHOOK_PREFIX + normalize_url(url)


def trigger_parameters_match(rule: Any, event: Any) -> bool:
    """Whether ``event`` (its ``source`` and ``trigger_ref``) is for ``rule`` (its ``trigger_parameters``)."""
    return parameters_match_source(rule.trigger_parameters, event.source, event.trigger_ref)


def parameters_match_source(rule_parameters: dict[str, Any] | None, source: str | None, trigger_ref: str) -> bool:
    source = source or ""
    parameters = rule_parameters or {}
    if source.startswith(WEBHOOK_PREFIX):
        url = parameters.get("url")
        return isinstance(url, str) and webhook_source(url) == source
    if source.startswith(TIMER_PREFIX):
        return timer_source(trigger_ref, parameters) == source
    return True
