"""``platformctl cost``: what the environment cost, from OpenCost's allocation API (README "Cost").

- ``platformctl cost [--env ENV] [--since 7d] [--by namespace] [--json]``: cost per namespace (or controller,
  pod, node, label:team, label:model, label:tenant) over the window, idle capacity apart, most expensive
  first. ``--since``: 30m, 6h, 7d, month (this calendar month), lastmonth or an ISO 8601 time.

Needs ``OPENCOST_URL`` (with ``make run``, the sandbox's OpenCost emulator). Read-only.
"""

from __future__ import annotations

import argparse
from typing import Any

from shared.cli import COMMAND_OPTIONS, command


def _options(parser: argparse.ArgumentParser) -> None:
    from shared.services.cost import AGGREGATES

    parser.add_argument("--since", default="7d", help="30m, 6h, 7d, month, lastmonth or an ISO 8601 time "
                        "(default 7d)")
    parser.add_argument("--by", default="namespace", choices=AGGREGATES, help="aggregate by (default namespace)")


COMMAND_OPTIONS["cost"] = _options


@command("cost", "cost by namespace, workload or label (team, model, tenant) from OpenCost, idle apart")
def cmd_cost(ctx: Any, args: argparse.Namespace) -> tuple[int, Any, str]:
    from shared.services import cost

    report = cost.report(ctx, since=args.since, aggregate=args.by, now=ctx.clock())
    return 0, report.as_dict(), report.text()
