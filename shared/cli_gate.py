"""``platformctl gate``: may this commit be promoted into ENV? (registered on import from ``shared.cli``).

``platformctl gate --env stg-uaenorth --drift drift.json [--scan scan.json]`` reads the evidence the pipeline
gathered about the *target* environment (``platformctl drift --json``, ``platformctl scan --json``) and prints the
decision of ``shared.services.delivery_gate``: exit 0 when the promotion may go ahead, 1 when it is refused, 2 when
a file cannot be read. It needs no settings and no network. Without ``--scan`` (or when the scan command is not
installed) the compliance check is a documented no-op and the output says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from shared.cli import COMMAND_OPTIONS, COMMANDS, command
from shared.errors import BadInputError


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--drift", metavar="FILE", help="output of `platformctl drift --json` for the target env")
    parser.add_argument("--scan", metavar="FILE", help="output of `platformctl scan --json` for the target env "
                        "(omit when the scan command is not available: compliance is then not checked)")
    parser.add_argument("--max-age-hours", type=float, default=24.0,
                        help="refuse evidence older than this (default 24)")


COMMAND_OPTIONS["gate"] = _options


def _read(path: str | None, what: str) -> dict[str, Any] | None:
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"--{what}: {path} not found") from None
    except ValueError as exc:
        raise BadInputError(f"--{what}: {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadInputError(f"--{what}: {path} is not a JSON object")
    return data


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@command("gate", "promotion gate: refuse when the target env has open drift or high/critical compliance findings",
         needs_context=lambda args: False)
def cmd_gate(ctx: Any, args: argparse.Namespace) -> tuple[int, Any, str]:
    from shared.services import delivery_gate

    if not args.env:
        raise BadInputError("gate needs --env: the environment the commit is promoted into")
    drift = _read(args.drift, "drift")
    scan = _read(args.scan, "scan")
    why = "" if scan is not None else (
        "platformctl has no scan command yet" if "scan" not in COMMANDS else "no --scan evidence given")
    decision = delivery_gate.decide(env=args.env, drift=drift, scan=scan, now=_now(),
                                    max_age=dt.timedelta(hours=args.max_age_hours), scan_unavailable_reason=why)
    lines = [f"{'ALLOWED' if decision.allowed else 'REFUSED'} [{decision.reason}] {decision.message}"]
    lines += [f"  {b.source:<5} {b.severity:<8} {b.rule} {b.resource}: {b.message}" for b in decision.blockers]
    lines += [f"  note: {n}" for n in decision.notes]
    return (0 if decision.allowed else 1), decision.as_dict(), "\n".join(lines)
