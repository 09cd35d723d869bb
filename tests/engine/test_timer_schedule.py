"""Timer ids and next-fire computation (pure): DST, APScheduler fields, missed ticks skipped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.engine.timers import TimerError, next_fire, parse_timer, timer_id, timer_source


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_rules_with_the_same_parameters_share_one_timer_whatever_the_alias():
    a = timer_id("core.interval_timer", {"unit": "seconds", "delta": 5})
    assert a == timer_id("core.st2.IntervalTimer", {"delta": 5, "unit": "seconds"})
    assert a != timer_id("core.interval_timer", {"unit": "seconds", "delta": 6})
    assert timer_source("core.interval_timer", {"unit": "seconds", "delta": 5}) == f"timer:{a}"
    with pytest.raises(TimerError):
        timer_id("core.webhook", {})


def test_interval_ticks_are_anchored_so_a_late_beat_skips_what_it_missed():
    timer = parse_timer("core.interval_timer", {"unit": "seconds", "delta": 10})
    assert next_fire(timer, utc(2026, 1, 1, 0, 0, 3)) == utc(2026, 1, 1, 0, 0, 10)
    assert next_fire(timer, utc(2026, 1, 1, 0, 0, 10)) == utc(2026, 1, 1, 0, 0, 20)
    # Beat was away an hour: the next tick is the one after now, not the first one missed.
    assert next_fire(timer, utc(2026, 1, 1, 1, 0, 1)) == utc(2026, 1, 1, 1, 0, 10)


def test_cron_keeps_its_wall_clock_time_across_both_dst_changes():
    timer = parse_timer("core.cron_timer", {"hour": 9, "minute": 30, "timezone": "America/New_York"})
    # 2026-03-08: clocks go forward in New York; 09:30 is 14:30 UTC before, 13:30 UTC after.
    assert next_fire(timer, utc(2026, 3, 7, 0)) == utc(2026, 3, 7, 14, 30)
    assert next_fire(timer, utc(2026, 3, 7, 15)) == utc(2026, 3, 8, 13, 30)
    # 2026-11-01: clocks go back; 09:30 EST is 14:30 UTC again.
    assert next_fire(timer, utc(2026, 10, 31, 14)) == utc(2026, 11, 1, 14, 30)


def test_a_time_that_happens_twice_fires_once_and_a_missing_one_is_shifted():
    twice = parse_timer("core.cron_timer", {"expression": "30 1 * * *", "timezone": "Europe/Paris"})
    first = next_fire(twice, utc(2026, 10, 24, 12))  # 01:30 CEST on the 25th, then 01:30 on the 26th
    assert first == utc(2026, 10, 24, 23, 30)
    assert next_fire(twice, first) == utc(2026, 10, 26, 0, 30)
    missing = parse_timer("core.cron_timer", {"expression": "30 2 * * *", "timezone": "Europe/Paris"})
    # 02:30 does not exist on 2026-03-29 in Paris; it fires at 03:30 CEST (01:30 UTC).
    assert next_fire(missing, utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1, 30)


def test_apscheduler_fields_mean_what_they_mean_in_stackstorm():
    weekdays = parse_timer("core.st2.CronTimer", {"day_of_week": "mon-fri", "hour": 8})
    # 2026-12-05 is a Saturday: the next fire is Monday 08:00:00 (minute and second default to 0).
    assert next_fire(weekdays, utc(2026, 12, 4, 9)) == utc(2026, 12, 7, 8)
    sunday = parse_timer("core.cron_timer", {"day_of_week": 6, "hour": 0})
    assert next_fire(sunday, utc(2026, 12, 1)) == utc(2026, 12, 6)
    seconds = parse_timer("core.cron_timer", {"expression": "*/15 * * * * *"})
    assert next_fire(seconds, utc(2026, 1, 1, 0, 0, 1)) == utc(2026, 1, 1, 0, 0, 15)
    week = parse_timer("core.cron_timer", {"week": 2, "day_of_week": "mon", "hour": 6})
    assert next_fire(week, utc(2026, 12, 1)) == utc(2027, 1, 11, 6)
    past = parse_timer("core.cron_timer", {"year": 2020, "hour": 6})
    assert next_fire(past, utc(2026, 1, 1)) is None


def test_a_date_timer_fires_once_in_its_time_zone():
    timer = parse_timer("core.date_timer", {"date": "2027-01-31T09:00:00", "timezone": "Asia/Tokyo"})
    assert next_fire(timer, utc(2027, 1, 1)) == utc(2027, 1, 31, 0)
    assert next_fire(timer, utc(2027, 1, 31, 0)) is None


@pytest.mark.parametrize(("ref", "parameters", "message"), [
    ("core.interval_timer", {"unit": "fortnights", "delta": 1}, "unit must be"),
    ("core.interval_timer", {"unit": "seconds", "delta": 0}, "delta must be"),
    ("core.cron_timer", {}, "at least one cron field"),
    ("core.cron_timer", {"expression": "* * *"}, "5 fields"),
    ("core.cron_timer", {"expression": "* * * * *", "hour": 1}, "not both"),
    ("core.cron_timer", {"minute": "99"}, "not valid"),
    ("core.cron_timer", {"day_of_week": "funday"}, "not a valid cron field"),
    ("core.cron_timer", {"hour": 1, "timezone": "Mars/Olympus"}, "IANA"),
    ("core.date_timer", {"date": "tomorrow"}, "ISO 8601"),
])
def test_parameters_that_cannot_be_scheduled_say_why(ref, parameters, message):
    with pytest.raises(TimerError, match=message):
        parse_timer(ref, parameters)
