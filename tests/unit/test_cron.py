import datetime as dt

import pytest

from shared.local.cron import CronSchedule

T0 = dt.datetime(2026, 11, 25, 22, 40, 5, tzinfo=dt.UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 17 * * * *", dt.datetime(2026, 11, 25, 23, 17, 0, tzinfo=dt.UTC)),
        ("*/10 * * * * *", dt.datetime(2026, 11, 25, 22, 40, 10, tzinfo=dt.UTC)),
        ("0 0 3 * * mon-fri", dt.datetime(2026, 11, 26, 3, 0, 0, tzinfo=dt.UTC)),
        ("0 0 3 * * sat", dt.datetime(2026, 11, 28, 3, 0, 0, tzinfo=dt.UTC)),
        ("0 30 9 1 * *", dt.datetime(2026, 12, 1, 9, 30, 0, tzinfo=dt.UTC)),
        ("0 0 0 29 2 *", dt.datetime(2028, 2, 29, 0, 0, 0, tzinfo=dt.UTC)),
        ("0 0,30 * * * *", dt.datetime(2026, 11, 25, 23, 0, 0, tzinfo=dt.UTC)),
    ],
)
def test_next_firing_time(expression, expected):
    assert CronSchedule.parse(expression).next_after(T0) == expected


@pytest.mark.parametrize("bad", ["* * * * *", "61 * * * * *", "0 0 25 * * *", "x * * * * *", "*/0 * * * * *"])
def test_invalid_schedules_are_refused(bad):
    with pytest.raises(ValueError):
        CronSchedule.parse(bad)
