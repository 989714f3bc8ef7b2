"""The one finding schema every compliance source reports in, and the report a scan returns.

A ``Finding`` is what a rule observed now (no history); a ``ReportedFinding`` adds what history says
(first/last seen, new/persisting/fixed/excepted). ``ScanReport.as_dict()`` is the Scan JSON contract
(``platformctl scan --json``); ``ScanReport.chat_summary()`` the short text chat posts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

CRITICAL, HIGH, MEDIUM, LOW, INFO = "critical", "high", "medium", "low", "info"
SEVERITIES = (CRITICAL, HIGH, MEDIUM, LOW, INFO)
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}

#: Where a finding comes from (the contract's ``source``).
CLUSTER, KYVERNO, CHECKOV, GITOPS, EXCEPTION = "cluster", "kyverno", "checkov", "gitops", "exception"
SOURCES = (CLUSTER, KYVERNO, CHECKOV, GITOPS, EXCEPTION)

#: History statuses (the contract's ``status``); a gate treats NEW and PERSISTING at high/critical as open.
NEW, PERSISTING, FIXED, EXCEPTED = "new", "persisting", "fixed", "excepted"
OPEN_STATUSES = frozenset({NEW, PERSISTING})
BLOCKING_SEVERITIES = frozenset({CRITICAL, HIGH})


def finding_id(source: str, rule: str, resource: str) -> str:
    """Stable across runs and processes: the same rule on the same resource from the same source."""
    return hashlib.sha256(f"{source}\x1f{rule}\x1f{resource}".encode()).hexdigest()[:20]


class Finding(NamedTuple):
    """What one rule observed on one resource (a tuple: immutable, and cheap to make by the tens of thousands)."""

    source: str
    rule: str
    severity: str
    resource: str   # "deployment/model-serving/vllm-h100", "node/aks-h100-0", "infra/modules/aks/main.tf:..."
    message: str
    remediation: str = ""
    #: Where it is written, when it comes from files: "gitops/apps/dev-uaenorth", "infra/modules/aks/main.tf#L12"
    #: (SARIF locations; not part of the identity).
    location: str = ""

    @property
    def id(self) -> str:
        return finding_id(self.source, self.rule, self.resource)


@dataclass(frozen=True)
class ReportedFinding:
    finding: Finding
    status: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    #: For EXCEPTED: who owns the exception and why (shown, not part of the contract's required keys).
    exception: str = ""

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def blocking(self) -> bool:
        return self.open and self.finding.severity in BLOCKING_SEVERITIES

    def as_dict(self) -> dict[str, Any]:
        f = self.finding
        out = {"id": f.id, "source": f.source, "rule": f.rule, "severity": f.severity, "resource": f.resource,
               "message": f.message, "remediation": f.remediation, "first_seen": iso(self.first_seen),
               "last_seen": iso(self.last_seen), "status": self.status}
        if f.location:
            out["location"] = f.location
        if self.exception:
            out["exception"] = self.exception
        return out


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def sort_key(item: ReportedFinding) -> tuple[Any, ...]:
    f = item.finding
    return (SEVERITY_RANK.get(f.severity, 9), item.status == FIXED, f.source, f.rule, f.resource)


@dataclass(frozen=True)
class ScanReport:
    env: str
    scanned_at: dt.datetime
    findings: tuple[ReportedFinding, ...]
    #: Sources scanned this time ("cluster", "kyverno", "gitops", "checkov").
    sources: tuple[str, ...] = ()
    #: Sources that could not be read, with why: their earlier findings are kept as they were.
    unavailable: tuple[tuple[str, str], ...] = field(default=())

    @property
    def blocking(self) -> tuple[ReportedFinding, ...]:
        return tuple(f for f in self.findings if f.blocking)

    @property
    def exit_code(self) -> int:
        """The contract: 1 when any open finding is high or critical, else 0."""
        return 1 if self.blocking else 0

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(SEVERITIES, 0)
        for item in self.findings:
            if item.open:
                counts[item.finding.severity] = counts.get(item.finding.severity, 0) + 1
        counts["new"] = sum(1 for f in self.findings if f.status == NEW)
        counts["fixed"] = sum(1 for f in self.findings if f.status == FIXED)
        return counts

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"env": self.env, "scanned_at": iso(self.scanned_at),
                                "findings": [f.as_dict() for f in self.findings], "summary": self.summary()}
        if self.sources:
            data["sources"] = list(self.sources)
        if self.unavailable:
            data["unavailable"] = [{"source": s, "error": e} for s, e in self.unavailable]
        return data

    def chat_summary(self, limit: int = 5) -> str:
        s = self.summary()
        head = (f"Compliance {self.env} at {self.scanned_at:%Y-%m-%d %H:%M}Z: "
                f"{s['critical']} critical, {s['high']} high, {s['medium']} medium, {s['low']} low open; "
                f"{s['new']} new, {s['fixed']} fixed")
        lines = [head + (" - gate FAILS" if self.exit_code else " - gate passes")]
        worst = [f for f in self.findings if f.open][:limit]
        for item in worst:
            f = item.finding
            lines.append(f"- [{f.severity}] {f.rule} {f.resource} ({item.status})")
        more = sum(1 for f in self.findings if f.open) - len(worst)
        if more > 0:
            lines.append(f"... and {more} more (platformctl scan --env {self.env})")
        for source, error in self.unavailable:
            lines.append(f"could not read {source}: {error}")
        return "\n".join(lines)

    def text(self) -> str:
        """Readable output of ``platformctl scan``."""
        lines = [self.chat_summary(limit=0).splitlines()[0], ""]
        for item in self.findings:
            f = item.finding
            lines.append(f"  {f.severity:<8} {item.status:<10} {f.source:<9} {f.rule:<34} {f.resource}")
            lines.append(f"           {f.message}")
            if item.exception:
                lines.append(f"           excepted: {item.exception}")
        if not self.findings:
            lines.append("  no findings")
        for source, error in self.unavailable:
            lines.append(f"  could not read {source}: {error}")
        return "\n".join(lines)


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per id (the first wins): two routes to the same observation report it once."""
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(f.id, f)
    return list(seen.values())


def without_history(findings: Sequence[Finding], now: dt.datetime) -> tuple[ReportedFinding, ...]:
    """Findings as a first scan reports them (``--manifests``: nothing is stored)."""
    return tuple(sorted((ReportedFinding(f, NEW, now, now) for f in findings), key=sort_key))
