"""NCRONTAB, the six-field schedule of Azure Functions timers: ``sec min hour day month day-of-week``.

Supports ``*``, lists, ranges, steps and month/day names, as the Functions host does. Times are UTC
(WEBSITE_TIME_ZONE is not modelled).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_NAMES = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
    "nov": 11, "dec": 12, "sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
}
_FIELDS = (("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12),
           ("day-of-week", 0, 6))


def _parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.lower().split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"{name}: step must be positive in {part!r}")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            start, end = _value(a, name), _value(b, name)
        else:
            start = _value(body, name)
            end = high if step_text else start
        if name == "day-of-week" and end == 7:
            end = 6
            values.add(0)  # 7 is Sunday too
        if not (low <= start <= high and low <= end <= high and start <= end):
            raise ValueError(f"{name}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, name: str) -> int:
    if text in _NAMES:
        return _NAMES[text]
    if not text.isdigit():
        raise ValueError(f"{name}: {text!r} is not a number")
    value = int(text)
    return 0 if name == "day-of-week" and value == 7 else value


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        parts = expression.split()
        if len(parts) != 6:
            raise ValueError(f"NCRONTAB needs 6 fields (sec min hour day month dow), got {expression!r}")
        sets = [_parse_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        return cls(expression, *sets, any_day=parts[3] == "*", any_weekday=parts[5] == "*")

    def _day_matches(self, t: dt.datetime) -> bool:
        weekday = (t.weekday() + 1) % 7
        if self.any_day or self.any_weekday:  # cron semantics: both restricted means either may match
            return t.day in self.days and weekday in self.weekdays
        return t.day in self.days or weekday in self.weekdays

    def next_after(self, t: dt.datetime) -> dt.datetime:
        """The first firing time strictly after ``t`` (aware datetime)."""
        t = t.replace(microsecond=0) + dt.timedelta(seconds=1)
        limit = t + dt.timedelta(days=366 * 5)
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + dt.timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0, second=0) + dt.timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + dt.timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t = t.replace(second=0) + dt.timedelta(minutes=1)
                continue
            if t.second not in self.seconds:
                t += dt.timedelta(seconds=1)
                continue
            return t
        raise ValueError(f"{self.expression!r} never fires")
