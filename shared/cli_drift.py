"""``platformctl drift``: what differs between git and the live platform, and the merge request that adopts it.

- ``platformctl drift [--env ENV] [--json]``: report findings (nothing changes); exit 1 when there are any.
- ``platformctl drift --open-mr``: also show the merge request it would open or update (dry run).
- ``platformctl drift --open-mr --apply``: open or update it, and record the findings (first/last seen).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from shared.cli import COMMAND_OPTIONS, command


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--open-mr", action="store_true", help="plan (or with --apply, open/update) the merge "
                        "request adopting live values in git")
    parser.add_argument("--apply", action="store_true", help="act: record findings and open/update the merge "
                        "request (default: dry run)")


COMMAND_OPTIONS["drift"] = _options


@command("drift", "differences between git (platform.yaml, the Flux path) and the live platform", mutating=True)
def cmd_drift(ctx: Any, args: argparse.Namespace) -> tuple[int, Any, str]:
    from shared.services import drift_actions

    dry_run = not args.apply or args.dry_run
    report = drift_actions.run_check(ctx, now=ctx.clock(), dry_run=dry_run, open_mr=args.open_mr,
                                     actor="platformctl")
    data = report.as_dict()
    lines = [f"drift in {report.env} at {data['checked_at']}" + (" (dry run)" if dry_run else ""), ""]
    for f in report.findings:
        lines.append(f"  {f.severity:<8} {f.kind:<20} {f.resource}" + (f" {f.field}" if f.field else "")
                     + f": git {json.dumps(f.expected, default=str)}, live {json.dumps(f.actual, default=str)}"
                     + f"  -> {f.remedy}" + ("  [destructive]" if f.destructive else ""))
        lines.append(f"           {f.message}")
    if not report.findings:
        lines.append("  no drift")
    for source, error in report.unavailable:
        lines.append(f"  could not read {source}: {error}")
    if report.change is not None:
        plan = report.change.plan
        mr = report.change.merge_request
        lines += ["", f"merge request ({plan.branch}): {plan.reason}: {plan.message}"
                  + (f"\n  {mr.web_url} labels {', '.join(mr.labels)}" if mr else "")]
    elif args.open_mr:
        lines += ["", "merge request: nothing to adopt in git"]
    code = 1 if report.findings or report.unavailable else 0
    return code, data, "\n".join(lines)
