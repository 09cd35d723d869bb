"""StackStorm's names for the built-in triggers, so its rules and sensors load unchanged."""

from __future__ import annotations

TRIGGER_ALIASES: dict[str, str] = {
    "core.st2.webhook": "core.webhook",
    "core.st2.IntervalTimer": "core.interval_timer",
    "core.st2.CronTimer": "core.cron_timer",
    "core.st2.DateTimer": "core.date_timer",
    "core.st2.generic.actiontrigger": "core.execution_finished",
    "core.st2.generic.inquiry": "core.inquiry_created",
}


def canonical_trigger_ref(ref: str) -> str:
    """The Patchbay ref for ``ref`` (a StackStorm alias or already a Patchbay ref)."""
    return TRIGGER_ALIASES.get(ref, ref)

# Events of these come only from Patchbay itself (a webhook request, a timer tick, an ended
# execution, an opened inquiry): the events API refuses them, or posting one would skip a
# webhook's signature.
PLATFORM_TRIGGERS = frozenset(TRIGGER_ALIASES.values())
