"""The cost report's pure part: OpenCost allocation sets summarized, and the --since window."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.errors import BadInputError
from shared.services import cost

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def alloc(total: float, gpu: float = 0.0, **extra: float) -> dict:
    return {"cpuCost": total - gpu, "gpuCost": gpu, "ramCost": 0.0, "totalCost": total, "gpuHours": gpu / 5, **extra}


def test_lines_are_summed_over_steps_sorted_by_total_with_idle_apart() -> None:
    sets = [{"a": alloc(1.0), "b": alloc(10.0, gpu=8.0), "__idle__": alloc(3.0)},
            {"a": alloc(2.0), "b": alloc(10.0, gpu=8.0)}]
    report = cost.summarize("dev-uaenorth", sets, start=NOW - dt.timedelta(days=1), end=NOW, aggregate="namespace",
                            prices="USD list prices as of 2026-11-29")
    assert [(line.name, line.total) for line in report.lines] == [("b", 20.0), ("a", 3.0)]
    assert report.idle.total == 3.0 and report.total == 26.0 and report.idle_share == pytest.approx(3 / 26)
    assert report.lines[0].gpu_hours == pytest.approx(3.2)
    data = report.as_dict()
    assert data["total"] == 26.0 and data["lines"][0]["name"] == "b" and data["idle"]["name"] == "__idle__"
    assert "b 20" in report.chat_summary() and "12% idle" in report.chat_summary()


def test_a_missing_total_is_the_sum_of_its_parts_and_unknown_fields_are_ignored() -> None:
    line = cost.CostLine.from_allocation("x", {"cpuCost": 1.0, "gpuCost": 2.0, "ramCost": 0.5, "pvCost": 0.25,
                                              "rawAllocationOnly": {"cpuCoreUsageMax": 3}})
    assert line.total == 3.75 and line.other == 0.25


WINDOWS = {
    "a duration counts back from now": ("7d", NOW - dt.timedelta(days=7), NOW),
    "minutes and hours too": ("90m", NOW - dt.timedelta(minutes=90), NOW),
    "month is this calendar month so far": ("month", dt.datetime(2026, 11, 1, tzinfo=dt.UTC), NOW),
    "lastmonth is the whole previous month": ("lastmonth", dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
                                              dt.datetime(2026, 11, 1, tzinfo=dt.UTC)),
    "an ISO time without a zone is UTC": ("2026-11-29T00:00", dt.datetime(2026, 11, 29, tzinfo=dt.UTC), NOW),
}


@pytest.mark.parametrize("behaviour", sorted(WINDOWS))
def test_since_reads_as_a_window(behaviour: str) -> None:
    since, start, end = WINDOWS[behaviour]
    assert cost.window_since(since, NOW) == (start, end)


@pytest.mark.parametrize("since", ["yesterday", "0d", "2027-01-01T00:00:00Z", "-3h"])
def test_since_refuses_what_is_not_a_past_time(since: str) -> None:
    with pytest.raises(BadInputError):
        cost.window_since(since, NOW)


def test_the_previous_month_of_january_is_december() -> None:
    assert cost.previous_month(dt.datetime(2027, 1, 1, 8, tzinfo=dt.UTC)) == (
        dt.datetime(2026, 12, 1, tzinfo=dt.UTC), dt.datetime(2027, 1, 1, tzinfo=dt.UTC))


def test_without_the_price_file_the_deployed_app_names_opencosts_prices(monkeypatch, tmp_path) -> None:
    from shared.services import cost_prices

    monkeypatch.setattr(cost_prices, "PRICE_FILE", tmp_path / "absent.yaml")  # gitops/ is not deployed
    assert "OpenCost" in cost._prices_label()
