"""AWS schedule expressions as the longest gap between runs (policies/schedules.py): the cases a
backup rule can be fooled with, against gaps worked out by hand from the calendar."""

from __future__ import annotations

import sys
from datetime import timedelta

import pytest

from .helpers import ROOT

sys.path.insert(0, str(ROOT / "policies"))
import schedules  # noqa: E402

sys.path.remove(str(ROOT / "policies"))

H, D = timedelta(hours=1), timedelta(days=1)


@pytest.mark.parametrize(
    "expression,gap",
    [
        ("cron(0 * ? * * *)", H),  # the program's: hourly
        ("cron(0 */6 ? * * *)", 6 * H),
        ("cron(0 1,13 * * ? *)", 12 * H),
        ("cron(0 5 * * ? *)", D),
        ("cron(0 5 ? * MON *)", 7 * D),
        ("cron(0 5 ? * 2 *)", 7 * D),  # AWS day 2 is Monday (cron's 1)
        ("cron(0 12 ? * 2-6 *)", 3 * D),  # weekdays: Friday noon to Monday noon
        ("cron(0 0 ? * 2#1 *)", 35 * D),  # first Monday of the month
        ("cron(0 0 ? * 6L *)", 35 * D),  # last Friday
        ("cron(0 0 L * ? *)", 31 * D),
        ("cron(0 0 31 * ? *)", 61 * D),  # only months with a 31st
        ("cron(0 0 1 1 ? *)", 366 * D),  # across the leap year 2028
        ("rate(15 minutes)", 15 * timedelta(minutes=1)),
        ("rate(1 hour)", H),
        ("rate(2 days)", 2 * D),
    ],
)
def test_the_longest_gap_is_the_calendars(expression, gap):
    assert schedules.longest_gap(expression) == gap


@pytest.mark.parametrize("expression", ["cron(0 0 31 2 ? *)", "cron(0 0 30 FEB ? *)", "cron(0 5 * * ? 2020)"])
def test_a_schedule_that_never_fires_is_never(expression):
    assert schedules.longest_gap(expression) == schedules.NEVER


def test_a_leap_day_schedule_is_at_least_the_horizon():
    assert schedules.longest_gap("cron(0 0 29 2 ? *)") >= 400 * D


@pytest.mark.parametrize(
    "expression,why",
    [
        ("cron(0 5 * * *)", "6 fields"),
        ("cron(0 5 1 * MON *)", "exactly one"),
        ("cron(0 5 * * * *)", "exactly one"),
        ("cron(0 0 15W * ? *)", "nW"),
        ("rate(1 hours)", "rate(1 hour)"),
        ("rate(0 minutes)", "N >= 1"),
        ("at(2027-01-01T00:00:00)", "neither"),
        ("cron(61 * ? * * *)", "minute"),
    ],
)
def test_what_aws_refuses_is_an_error_saying_why(expression, why):
    with pytest.raises(schedules.ScheduleError, match=why.replace("(", r"\(").replace(")", r"\)")):
        schedules.longest_gap(expression)
