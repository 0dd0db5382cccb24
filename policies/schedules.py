"""AWS schedule expressions (`cron(...)`, `rate(...)`) as the longest time between two runs.

AWS Backup and EventBridge share the format
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html): six cron
fields `minutes hours day-of-month month day-of-week year`, UTC, `?` in one of the two day fields,
day-of-week 1-7 from Sunday, and `rate(N minute|minutes|hour|hours|day|days)`. The cron fields are
evaluated by cronsim (a maintained cron evaluator, five Unix fields): this module only translates
AWS's dialect into cronsim's (day-of-week numbers one lower, `?` as `*`) and refuses what AWS
refuses. A cron schedule fires on (firing days) x (times of day), so the longest gap is read off
one year of firing days and one day of firing times: a few hundred steps, whatever the frequency.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

try:
    from cronsim import CronSim, CronSimError
except ImportError as exc:  # a pack installed without its requirements: say which, not a bare traceback
    raise ImportError(
        "the pack's backup-plan-coverage rule evaluates schedules with cronsim, which is not installed: "
        "`pip install -r policies/requirements.txt`"
    ) from exc

NEVER = timedelta.max  # a schedule that never fires
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_DOW_NUMBER = re.compile(r"(?<![#/0-9])([1-7])(?![0-9])")  # a day number, not the n of `#n` nor a step
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
# a leap year and the next: every gap of a year-unrestricted schedule's firing days shows within
# them (a yearly one fires twice); one firing only every 29 February is reported as the horizon
_START = datetime(2027, 12, 31, tzinfo=UTC)
_HORIZON = timedelta(days=400)


class ScheduleError(ValueError):
    """An expression AWS would refuse (the message says why)."""


def _aws_dow(field: str) -> str:
    """AWS day-of-week (1 = SUN .. 7 = SAT) as cronsim's (0 = SUN .. 6 = SAT); names pass as they are."""
    return _DOW_NUMBER.sub(lambda m: str(int(m.group(1)) - 1), field)


@lru_cache(maxsize=64)
def longest_gap(expression: str) -> timedelta:
    """The longest time between two runs of an AWS schedule expression; `NEVER` if it never runs
    (an impossible date, or only in past or bounded years). Raises ScheduleError on what AWS refuses."""
    text = expression.strip()
    rate = _RATE.match(text)
    if rate:
        n = int(rate.group(1))
        if n < 1 or (n == 1) != (not rate.group(2).endswith("s")):
            raise ScheduleError(f"{expression!r}: a rate is `rate(1 hour)` or `rate(N hours)` with N >= 1")
        return timedelta(seconds=n * _UNITS[rate.group(2).rstrip("s")])
    cron = _CRON.match(text)
    if not cron:
        raise ScheduleError(f"{expression!r} is neither `cron(...)` nor `rate(...)`")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ScheduleError(f"{expression!r}: AWS cron has 6 fields (minutes hours day-of-month month day-of-week year)")
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(f"{expression!r}: exactly one of day-of-month and day-of-week must be `?`")
    if year != "*":
        return NEVER  # bounded to some years: after the last one, it never runs again
    dom = "*" if dom == "?" else dom
    try:
        times = CronSim(f"{minutes} {hours} * * *", _START)
        CronSim(f"0 0 {dom} * *", _START)  # the day-of-month's own syntax (cronsim: no `nW`)
    except CronSimError as exc:
        raise ScheduleError(f"{expression!r}: {exc} (cronsim evaluates `L`, `LW`, `n#k` and `nL`, not `nW`)") from exc
    try:
        days = CronSim(f"0 0 {dom} {month} {'*' if dow == '?' else _aws_dow(dow)}", _START)
    except CronSimError as exc:
        if "day-of-month" in str(exc):  # a day no month of the expression has (31 February)
            return NEVER
        raise ScheduleError(f"{expression!r}: {exc}") from exc
    day_starts = []
    for day in days:
        if day - _START > _HORIZON:
            break
        day_starts.append(day)
    if len(day_starts) < 2:
        return NEVER if not day_starts else _HORIZON  # once in the horizon: at least that long between runs
    first_day = _START + timedelta(days=1)
    offsets = []
    for t in times:  # the times of one day (cronsim yields strictly after its start)
        if t >= first_day + timedelta(days=1):
            break
        if t >= first_day:
            offsets.append(t - first_day)
    within = max((b - a for a, b in itertools.pairwise(offsets)), default=timedelta(0))
    across = max((b + offsets[0]) - (a + offsets[-1]) for a, b in itertools.pairwise(day_starts))
    return max(within, across)
