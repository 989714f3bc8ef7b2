"""The promotion gate: may a commit be promoted into an environment, given the evidence about that environment?

Pure decision, no I/O: the pipeline gathers the evidence (``platformctl drift --json`` and ``platformctl scan
--json`` run against the *target* environment) and ``decide`` turns it into a ``GateDecision`` with a reason code
and a human message. ``platformctl gate`` (shared/cli_gate.py) reads the files and prints the decision.

Policy (README "Delivery"):

- drift findings of severity ``critical`` in the target environment refuse the promotion (drift's own scale is
  critical/warning/info; critical is the one that maps onto the Scan JSON's high/critical);
- compliance findings of severity ``high`` or ``critical`` whose status is ``new`` or ``persisting`` refuse it
  (the Scan JSON contract: ``excepted`` and ``fixed`` findings are closed);
- evidence about another environment, evidence older than ``max_age``, or a drift report that could not read a
  source refuses it: a gate that cannot see must not say yes;
- no scan evidence at all (the scan command is not installed yet) is a documented no-op: the decision allows, and
  says in its reason and message that compliance was not checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ALLOWED = "PROMOTION_ALLOWED"
ALLOWED_SCAN_UNAVAILABLE = "PROMOTION_ALLOWED_SCAN_UNAVAILABLE"
REFUSED_DRIFT = "PROMOTION_REFUSED_DRIFT"
REFUSED_COMPLIANCE = "PROMOTION_REFUSED_COMPLIANCE"
REFUSED_EVIDENCE = "PROMOTION_REFUSED_EVIDENCE"

#: Scan JSON severities that block, and the statuses that count as open (contract in README "Delivery").
BLOCKING_SCAN_SEVERITIES = frozenset({"critical", "high"})
OPEN_SCAN_STATUSES = frozenset({"new", "persisting"})
#: Drift severities (shared/services/drift.py: critical, warning, info) that block.
BLOCKING_DRIFT_SEVERITIES = frozenset({"critical", "high"})
DEFAULT_MAX_AGE = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Blocker:
    source: str      # "drift" or "scan"
    severity: str
    resource: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "severity": self.severity, "resource": self.resource, "rule": self.rule,
                "message": self.message}


@dataclass(frozen=True)
class GateDecision:
    env: str
    allowed: bool
    reason: str
    message: str
    blockers: tuple[Blocker, ...] = ()
    problems: tuple[str, ...] = ()    # evidence that could not be trusted
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"env": self.env, "allowed": self.allowed, "reason": self.reason, "message": self.message,
                "blockers": [b.as_dict() for b in self.blockers], "problems": list(self.problems),
                "notes": list(self.notes)}


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _check_envelope(name: str, evidence: Mapping[str, Any], time_key: str, *, env: str, now: dt.datetime,
                    max_age: dt.timedelta) -> list[str]:
    problems = []
    if evidence.get("env") != env:
        problems.append(f"{name} evidence is about {evidence.get('env')!r}, not {env}")
    at = _parse_time(evidence.get(time_key))
    if at is None:
        problems.append(f"{name} evidence has no readable {time_key}")
    elif now - at > max_age:
        problems.append(f"{name} evidence from {at.isoformat()} is older than {max_age} at {now.isoformat()}")
    elif at - now > dt.timedelta(minutes=5):
        problems.append(f"{name} evidence is dated in the future ({at.isoformat()})")
    if not isinstance(evidence.get("findings"), list):
        problems.append(f"{name} evidence has no findings list")
    return problems


def drift_blockers(drift: Mapping[str, Any]) -> tuple[list[Blocker], list[str]]:
    blockers, problems = [], []
    for item in drift.get("unavailable") or []:
        problems.append(f"drift could not read {item.get('source')}: {item.get('error')}")
    for f in drift.get("findings") or []:
        if str(f.get("severity", "")).lower() in BLOCKING_DRIFT_SEVERITIES:
            resource = str(f.get("resource", "")) + (f" {f['field']}" if f.get("field") else "")
            blockers.append(Blocker("drift", str(f["severity"]), resource, str(f.get("kind", "")),
                                    str(f.get("message", ""))))
    return blockers, problems


def scan_blockers(scan: Mapping[str, Any]) -> list[Blocker]:
    return [Blocker("scan", str(f.get("severity")), str(f.get("resource", "")), str(f.get("rule", "")),
                    str(f.get("message", "")))
            for f in scan.get("findings") or []
            if str(f.get("severity", "")).lower() in BLOCKING_SCAN_SEVERITIES
            and str(f.get("status", "")).lower() in OPEN_SCAN_STATUSES]


def _summary(blockers: Sequence[Blocker]) -> str:
    text = ", ".join(f"{b.severity} {b.rule or b.source} on {b.resource}" for b in blockers[:5])
    return text + (f" and {len(blockers) - 5} more" if len(blockers) > 5 else "")


def decide(*, env: str, drift: Mapping[str, Any] | None, scan: Mapping[str, Any] | None, now: dt.datetime,
           max_age: dt.timedelta = DEFAULT_MAX_AGE, scan_unavailable_reason: str = "") -> GateDecision:
    """Decide whether a promotion into ``env`` may go ahead. ``drift``/``scan``: the parsed JSON documents;
    ``scan=None`` means the compliance scan is not available (say why in ``scan_unavailable_reason``)."""
    problems: list[str] = []
    blockers: list[Blocker] = []
    notes: list[str] = []
    if drift is None:
        problems.append("no drift evidence: run platformctl drift --json against the target environment")
    else:
        problems += _check_envelope("drift", drift, "checked_at", env=env, now=now, max_age=max_age)
        found, unreadable = drift_blockers(drift)
        blockers += found
        problems += unreadable
    if scan is None:
        notes.append("compliance not checked: " + (scan_unavailable_reason or "no platformctl scan evidence")
                     + " (documented no-op until the scan command exists)")
    else:
        problems += _check_envelope("scan", scan, "scanned_at", env=env, now=now, max_age=max_age)
        blockers += scan_blockers(scan)

    if problems:
        return GateDecision(env, False, REFUSED_EVIDENCE,
                            f"promotion to {env} refused: the evidence cannot be trusted ({'; '.join(problems)})",
                            tuple(blockers), tuple(problems), tuple(notes))
    drift_found = [b for b in blockers if b.source == "drift"]
    if drift_found:
        return GateDecision(env, False, REFUSED_DRIFT,
                            f"promotion to {env} refused: {len(drift_found)} open drift finding(s): "
                            f"{_summary(drift_found)}; adopt or revert them first (platformctl drift --open-mr)",
                            tuple(blockers), (), tuple(notes))
    if blockers:
        return GateDecision(env, False, REFUSED_COMPLIANCE,
                            f"promotion to {env} refused: {len(blockers)} open high/critical compliance "
                            f"finding(s): {_summary(blockers)}; fix them or record an exception",
                            tuple(blockers), (), tuple(notes))
    if scan is None:
        return GateDecision(env, True, ALLOWED_SCAN_UNAVAILABLE,
                            f"promotion to {env} allowed: no open drift; {notes[0]}", (), (), tuple(notes))
    return GateDecision(env, True, ALLOWED,
                        f"promotion to {env} allowed: no open drift, no open high/critical compliance finding",
                        (), (), tuple(notes))

