"""Timers: the three built-in timer trigger types, their ids and when they fire next (pure).

A timer is defined by the rules that use it: rules on the same timer type with the same
parameters share one timer (as in StackStorm), named by ``timer_id``. Its events carry the
source ``timer:<timer id>`` and fire only the rules whose own timer id is that one.

Interval timers are anchored at the Unix epoch (every 10 s fires at :00, :10, ...), so
every beat computes the same ticks and nothing depends on when a beat started. Cron timers
follow APScheduler's fields (StackStorm's ``core.st2.CronTimer``) or a cron expression,
read as wall-clock time in their time zone: a time that occurs twice (clocks going back)
fires once, at its first occurrence; a time that does not exist (clocks going forward) is
shifted by the jump (02:30 becomes 03:30), as Python's zoneinfo reads it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

INTERVAL, CRON, DATE = "interval", "cron", "date"
TIMER_KINDS: dict[str, str] = {
    "core.interval_timer": INTERVAL, "core.st2.IntervalTimer": INTERVAL,
    "core.cron_timer": CRON, "core.st2.CronTimer": CRON,
    "core.date_timer": DATE, "core.st2.DateTimer": DATE,
}
TIMER_TRIGGER_REFS = tuple(TIMER_KINDS)
SOURCE_PREFIX = "timer:"
UNIT_SECONDS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CANDIDATES = 200_000  # cron candidates examined for one next fire (year/week filters)


class TimerError(ValueError):
    """Timer parameters that cannot be scheduled; the message says why."""


@dataclass(frozen=True)
class Timer:
    kind: str
    id: str
    parameters: dict[str, Any]
    zone: ZoneInfo
    interval: int = 0                   # seconds (interval timers)
    expression: str = ""                # croniter expression, seconds last (cron timers)
    years: frozenset[int] | None = None  # cron filters croniter has no field for
    weeks: frozenset[int] | None = None
    date: datetime | None = None        # UTC (date timers)


def timer_kind(trigger_ref: str) -> str | None:
    """INTERVAL, CRON or DATE for a timer trigger ref (StackStorm aliases too), else None."""
    return TIMER_KINDS.get(trigger_ref)


def timer_id(trigger_ref: str, parameters: dict[str, Any] | None) -> str:
    """The id shared by every rule on this timer: ``<kind>-<hash of its parameters>``."""
    kind = timer_kind(trigger_ref)
    if kind is None:
        raise TimerError(f"{trigger_ref!r} is not a timer trigger type.")
    canonical = json.dumps(parameters or {}, sort_keys=True, separators=(",", ":"), default=str)
    return f"{kind}-{hashlib.sha256(canonical.encode()).hexdigest()[:20]}"


def timer_source(trigger_ref: str, parameters: dict[str, Any] | None) -> str:
    """The ``source`` of the events this timer records."""
    return SOURCE_PREFIX + timer_id(trigger_ref, parameters)


def parse_timer(trigger_ref: str, parameters: dict[str, Any] | None) -> Timer:
    """Check a rule's timer parameters and build its Timer; raises TimerError."""
    parameters = dict(parameters or {})
    ident = timer_id(trigger_ref, parameters)
    kind = timer_kind(trigger_ref)
    zone = _zone(parameters.get("timezone"))
    if kind == INTERVAL:
        unit, delta = parameters.get("unit"), parameters.get("delta")
        if unit not in UNIT_SECONDS:
            raise TimerError(f"unit must be one of {', '.join(UNIT_SECONDS)}.")
        if not isinstance(delta, int) or isinstance(delta, bool) or delta < 1:
            raise TimerError("delta must be a whole number of at least 1.")
        return Timer(INTERVAL, ident, parameters, zone, interval=delta * UNIT_SECONDS[unit])
    if kind == DATE:
        return Timer(DATE, ident, parameters, zone, date=_date(parameters.get("date"), zone))
    expression, years, weeks = _cron(parameters)
    return Timer(CRON, ident, parameters, zone, expression=expression, years=years, weeks=weeks)


def timer_errors(trigger_ref: str, parameters: dict[str, Any] | None) -> list[str]:
    """Why a rule's timer parameters cannot be scheduled: [] when they can or it is no timer."""
    if timer_kind(trigger_ref) is None:
        return []
    try:
        parse_timer(trigger_ref, parameters)
    except TimerError as exc:
        return [str(exc)]
    return []


def next_fire(timer: Timer, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (aware), in UTC; None when it never fires again."""
    after = after.astimezone(UTC)
    if timer.kind == INTERVAL:
        elapsed = (after - EPOCH) // timedelta(seconds=1)
        return EPOCH + timedelta(seconds=(elapsed // timer.interval + 1) * timer.interval)
    if timer.kind == DATE:
        return timer.date if timer.date is not None and timer.date > after else None
    return _next_cron(timer, after)


def _next_cron(timer: Timer, after: datetime) -> datetime | None:
    # Walk naive wall-clock times, so DST never shifts a schedule; map each to UTC with fold=0
    # (the first of a repeated time; a missing time shifted by the jump).
    local = after.astimezone(timer.zone).replace(tzinfo=None, microsecond=0)
    walker = croniter(timer.expression, local)
    for _ in range(MAX_CANDIDATES):
        candidate: datetime = walker.get_next(datetime)
        if timer.years is not None and candidate.year > max(timer.years):
            return None
        if timer.years is not None and candidate.year not in timer.years:
            continue
        if timer.weeks is not None and candidate.isocalendar()[1] not in timer.weeks:
            continue
        fire = candidate.replace(tzinfo=timer.zone).astimezone(UTC)
        if fire > after:
            return fire
    return None


def _zone(name: Any) -> ZoneInfo:
    if name in (None, ""):
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise TimerError(f"timezone {name!r} is not an IANA time zone (e.g. Europe/Paris).") from None


def _date(value: Any, zone: ZoneInfo) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise TimerError(f"date {value!r} is not an ISO 8601 date and time.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _cron(parameters: dict[str, Any]) -> tuple[str, frozenset[int] | None, frozenset[int] | None]:
    """A croniter expression (seconds last) and the year/week filters."""
    given = {name: str(parameters[name]).strip().lower() for name in CRON_FIELDS if parameters.get(name) is not None}
    expression = parameters.get("expression")
    if expression is not None:
        if given:
            raise TimerError("Give either expression or the cron fields, not both.")
        fields = str(expression).split()
        if len(fields) not in (5, 6):
            raise TimerError("expression must have 5 fields (minute hour day month day-of-week) "
                             "or 6 with seconds first.")
        seconds = fields.pop(0) if len(fields) == 6 else "0"
        text = " ".join([*fields, seconds])
        years = weeks = None
    else:
        if not given:
            raise TimerError("Give an expression or at least one cron field (e.g. minute: '*/5').")
        # APScheduler: fields above the smallest one given default to '*', those below to their
        # minimum; week and day_of_week default to '*'.
        smallest = max(i for i, name in enumerate(CRON_FIELDS) if name in given)
        value = {name: given.get(name, "*" if i < smallest or name in ("week", "day_of_week") else
                                 ("1" if name in ("month", "day") else "0"))
                 for i, name in enumerate(CRON_FIELDS)}
        day_of_week = ",".join(str((d + 1) % 7) for d in sorted(_values(value["day_of_week"], 0, 6, DAY_NAMES)))
        text = " ".join([value["minute"], value["hour"], value["day"], value["month"], day_of_week, value["second"]])
        years = None if value["year"] == "*" else frozenset(_values(value["year"], 1970, 2200))
        weeks = None if value["week"] == "*" else frozenset(_values(value["week"], 1, 53))
    if not croniter.is_valid(text):
        given_as = f"expression {expression!r}" if expression is not None else "The cron fields"
        raise TimerError(f"{given_as}: the schedule {text!r} (minute hour day month day-of-week second) is not valid.")
    return text, years, weeks


def _values(spec: str, low: int, high: int, names: tuple[str, ...] = ()) -> set[int]:
    """The numbers a field such as ``*/2``, ``1-5``, ``mon-fri`` or ``3,7`` selects."""
    found: set[int] = set()
    for part in spec.split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                start, stop = low, high
            else:
                first, _, last = base.partition("-")
                start = names.index(first) + low if first in names else int(first)
                stop = (names.index(last) + low if last in names else int(last)) if last else (high if step_text else start)
        except ValueError:
            raise TimerError(f"{spec!r} is not a valid cron field.") from None
        if step < 1 or not low <= start <= high or not low <= stop <= high or start > stop:
            raise TimerError(f"{spec!r} is out of range ({low}-{high}).")
        found.update(range(start, stop + 1, step))
    return found
