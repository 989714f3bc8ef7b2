"""Cost reports from OpenCost's allocation API: ``platformctl cost`` and the monthly summary posted to chat.

Gather (one allocation query over an explicit window), decide (``summarize``: pure, lines sorted by total,
idle apart, shares), act (print, or post once per environment and month through ChatOps' ``chat_notify``).
Prices are OpenCost's, i.e. the platform's price file (``cost_prices``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from shared.errors import BadInputError

log = logging.getLogger("platform_core.cost")

IDLE = "__idle__"
UNALLOCATED = "__unallocated__"
AGGREGATES = ("namespace", "controller", "pod", "node", "label:team", "label:model", "label:tenant")
COMPONENTS = ("cpuCost", "gpuCost", "ramCost", "pvCost", "networkCost", "loadBalancerCost", "sharedCost",
              "externalCost")


@dataclass(frozen=True)
class CostLine:
    name: str
    cpu: float
    gpu: float
    ram: float
    other: float  # disks, network, load balancers, shared, external
    total: float
    gpu_hours: float

    @classmethod
    def from_allocation(cls, name: str, a: dict[str, Any]) -> CostLine:
        def f(key: str) -> float:
            value = a.get(key)
            return float(value) if isinstance(value, int | float) else 0.0

        other = sum(f(k) for k in COMPONENTS[3:])
        total = f("totalCost") or f("cpuCost") + f("gpuCost") + f("ramCost") + other
        return cls(name, f("cpuCost"), f("gpuCost"), f("ramCost"), other, total, f("gpuHours"))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cpu": round(self.cpu, 2), "gpu": round(self.gpu, 2), "ram": round(self.ram, 2),
                "other": round(self.other, 2), "total": round(self.total, 2), "gpu_hours": round(self.gpu_hours, 2)}


@dataclass(frozen=True)
class CostReport:
    env: str
    start: dt.datetime
    end: dt.datetime
    aggregate: str
    lines: tuple[CostLine, ...]  # most expensive first, idle excluded
    idle: CostLine | None
    prices: str  # the price source's label: currency, date, estimates

    @property
    def allocated(self) -> float:
        return sum(line.total for line in self.lines)

    @property
    def total(self) -> float:
        return self.allocated + (self.idle.total if self.idle else 0.0)

    @property
    def idle_share(self) -> float:
        return (self.idle.total / self.total) if self.idle and self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"env": self.env, "window": {"start": _iso(self.start), "end": _iso(self.end)},
                "aggregate": self.aggregate, "currency": "USD", "prices": self.prices,
                "total": round(self.total, 2), "allocated": round(self.allocated, 2),
                "idle": self.idle.as_dict() if self.idle else None, "idle_share": round(self.idle_share, 4),
                "lines": [line.as_dict() for line in self.lines]}

    def text(self) -> str:
        head = f"{self.aggregate:<28} {'total':>10} {'GPU':>10} {'CPU':>9} {'RAM':>9} {'other':>8} {'GPU-h':>8}"
        out = [f"cost in {self.env}, {_iso(self.start)} to {_iso(self.end)} ({self.prices})", "", head,
               "-" * len(head)]
        rows = list(self.lines) + ([self.idle] if self.idle else [])
        for line in rows:
            name = "(idle capacity)" if line.name == IDLE else "(no such label)" if line.name == UNALLOCATED \
                else line.name
            out.append(f"{name[:28]:<28} {line.total:10,.2f} {line.gpu:10,.2f} {line.cpu:9,.2f} {line.ram:9,.2f} "
                       f"{line.other:8,.2f} {line.gpu_hours:8,.1f}")
        out += ["-" * len(head), f"{'total':<28} {self.total:10,.2f}   idle {self.idle_share:.0%} of it"]
        return "\n".join(out)

    def chat_summary(self, top: int = 5) -> str:
        biggest = ", ".join(f"{line.name} {line.total:,.0f}" for line in self.lines[:top]) or "nothing allocated"
        return (f"Cost of {self.env} from {self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}: {self.total:,.0f} USD "
                f"({self.idle_share:.0%} idle capacity). By {self.aggregate}: {biggest}. "
                f"Prices: {self.prices}. Details: platformctl cost --env {self.env} --json")


def summarize(env: str, sets: list[dict[str, Any]], *, start: dt.datetime, end: dt.datetime, aggregate: str,
              prices: str) -> CostReport:
    """Pure: OpenCost's allocation sets (one per step) -> one report, lines summed over the steps."""
    totals: dict[str, CostLine] = {}
    for allocation_set in sets:
        for name, a in allocation_set.items():
            line = CostLine.from_allocation(name, a if isinstance(a, dict) else {})
            if name in totals:
                old = totals[name]
                line = CostLine(name, old.cpu + line.cpu, old.gpu + line.gpu, old.ram + line.ram,
                                old.other + line.other, old.total + line.total, old.gpu_hours + line.gpu_hours)
            totals[name] = line
    idle = totals.pop(IDLE, None)
    lines = tuple(sorted(totals.values(), key=lambda line: (-line.total, line.name)))
    return CostReport(env, start, end, aggregate, lines, idle, prices)


def window_since(since: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``30m``, ``6h``, ``7d``, ``month`` (this calendar month), ``lastmonth`` or an ISO 8601 time -> [start, now]."""
    units = {"m": 60, "h": 3600, "d": 86400}
    text = since.strip()
    if text == "month":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now
    if text == "lastmonth":
        return previous_month(now)
    if len(text) >= 2 and text[:-1].isdigit() and text[-1] in units and int(text[:-1]) > 0:
        return now - dt.timedelta(seconds=int(text[:-1]) * units[text[-1]]), now
    try:
        start = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInputError(f"--since: expected 30m, 6h, 7d, month, lastmonth or an ISO 8601 time, "
                            f"got {since!r}") from None
    start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    if start >= now:
        raise BadInputError(f"--since: {since} is not in the past")
    return start, now


def previous_month(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    end = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (end - dt.timedelta(days=1)).replace(day=1), end


def report(ctx: Any, *, since: str = "7d", aggregate: str = "namespace", now: dt.datetime) -> CostReport:
    """Gather and summarize: one accumulated allocation query over [since, now] with idle capacity."""
    if aggregate not in AGGREGATES:
        raise BadInputError(f"--by: expected one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    start, end = window_since(since, now)
    sets = ctx.cost_allocations.allocation(window=f"{_iso(start)},{_iso(end)}", aggregate=aggregate,
                                           include_idle=True)
    return summarize(ctx.platform.name, sets, start=start, end=end, aggregate=aggregate, prices=_prices_label())


def post_monthly_summary(ctx: Any, *, now: dt.datetime) -> str:
    """Post last month's summary once per environment and month through ChatOps' notification channels. Returns
    what happened: ``posted``, ``already-posted`` or ``no-channel`` (no notification webhook configured: the
    summary is still audited on ``cost/<env>/<month>``)."""
    from shared.services import chat_notify

    start, end = previous_month(now)
    month = f"{start:%Y-%m}"
    claim = ctx.state.claim("cost-monthly-summary", f"{ctx.platform.name}/{month}")
    if claim is None:
        return "already-posted"
    try:
        summary = summarize(ctx.platform.name, ctx.cost_allocations.allocation(
            window=f"{_iso(start)},{_iso(end)}", aggregate="namespace", include_idle=True),
            start=start, end=end, aggregate="namespace", prices=_prices_label())
        posted = chat_notify.post(ctx, summary.chat_summary(), env=ctx.platform.name)
    except BaseException:
        ctx.state.release(claim)  # a later run posts it
        raise
    ctx.state.complete(claim, "posted" if posted else "no-channel")
    ctx.state.audit(actor="cost-summary", action="post", target=f"cost/{ctx.platform.name}/{month}",
                    reason="MonthlyCostSummary", outcome="done" if posted else "skipped",
                    message=summary.chat_summary())
    return "posted" if posted else "no-channel"


def _prices_label() -> str:
    """The price file's label; the deployed app has no gitops/ (.funcignore): OpenCost's prices are the same."""
    from shared.services.cost_prices import load

    try:
        return load().label()
    except FileNotFoundError:
        return "OpenCost's prices (the platform's price file)"


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
