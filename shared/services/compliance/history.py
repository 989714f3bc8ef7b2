"""Exceptions (in git) and history (in the ``compliancefindings`` table): what turns findings into a report.

Exceptions live in ``infra/compliance-exceptions.yaml``, reviewed like any change::

    exceptions:
      - rule: disallow-host-path            # glob on the rule id
        resource: daemonset/gpu-operator/*  # glob on the resource
        env: [dev-uaenorth]                 # or "*" (default)
        owner: platform-core
        reason: the NVIDIA driver DaemonSet mounts the host's /run/nvidia
        expires: 2027-03-31                 # after this date the finding is open again, and this is a finding
        validated: 2026-11-29               # when someone last checked the reason still holds

A malformed file is a ``ConfigError`` naming the file, the entry and the field (the scan does not run on a
half-read file: exceptions silently dropped would open findings, silently kept would hide them).

History: one row per finding id (partition: the environment). ``classify`` is pure: given the stored rows,
the current findings, the exceptions and ``now``, it returns the reported findings (new, persisting, fixed,
excepted) and the rows to write. Sources not scanned this time keep their rows untouched, so a scan without
``--iac`` never "fixes" checkov findings.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import ConfigError
from shared.services.compliance.findings import (
    EXCEPTED,
    EXCEPTION,
    FIXED,
    MEDIUM,
    NEW,
    PERSISTING,
    Finding,
    ReportedFinding,
    iso,
    parse_iso,
    sort_key,
)

FINDINGS_TABLE = "compliancefindings"
EXCEPTIONS_FILE = "compliance-exceptions.yaml"
REQUIRED = ("rule", "resource", "owner", "reason", "expires")
#: The row that says when the last scan ran and what it covered (``last_scan``).
SCAN_ROW = "last-scan"


@dataclass(frozen=True)
class ComplianceException:
    index: int
    rule: str
    resource: str
    envs: tuple[str, ...]
    owner: str
    reason: str
    expires: dt.date
    validated: dt.date | None = None

    def applies(self, finding: Finding, env: str) -> bool:
        return (any(fnmatch.fnmatchcase(env, e) for e in self.envs)
                and fnmatch.fnmatchcase(finding.rule, self.rule)
                and fnmatch.fnmatchcase(finding.resource, self.resource))

    def expired(self, now: dt.datetime) -> bool:
        return now.date() > self.expires

    @property
    def label(self) -> str:
        return f"{self.rule} on {self.resource} (owner {self.owner}, until {self.expires}): {self.reason}"


def _date(value: Any, where: str, problems: list[str]) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        problems.append(f"{where}: expected a date YYYY-MM-DD, got {value!r}")
        return None


def parse_exceptions(raw: Any, source: str = EXCEPTIONS_FILE) -> tuple[ComplianceException, ...]:
    """``{exceptions: [...]}`` -> exceptions; raises ConfigError listing every problem."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not isinstance(raw.get("exceptions", []), list):
        raise ConfigError([f"{source}: expected a mapping with a list 'exceptions'"])
    problems: list[str] = []
    out = []
    for i, entry in enumerate(raw.get("exceptions") or ()):
        where = f"{source}: exceptions[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: expected a mapping with {', '.join(REQUIRED)}")
            continue
        missing = [k for k in REQUIRED if entry.get(k) in (None, "")]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        envs = entry.get("env", "*")
        envs = (envs,) if isinstance(envs, str) else tuple(envs) if isinstance(envs, list) else None
        if not envs or not all(isinstance(e, str) for e in envs):
            problems.append(f"{where}.env: expected an environment, a glob or a list of them")
            continue
        expires = _date(entry["expires"], f"{where}.expires", problems)
        validated = _date(entry["validated"], f"{where}.validated", problems) if entry.get("validated") else None
        if expires is None:
            continue
        out.append(ComplianceException(i, str(entry["rule"]), str(entry["resource"]), tuple(envs),
                                       str(entry["owner"]), str(entry["reason"]), expires, validated))
    if problems:
        raise ConfigError(problems)
    return tuple(out)


def load_exceptions(path: Path) -> tuple[ComplianceException, ...]:
    import yaml

    if not path.exists():
        return ()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path.name}: not valid YAML: {exc}"]) from None
    return parse_exceptions(raw, path.name)


def expired_exception_findings(exceptions: Iterable[ComplianceException], env: str,
                               now: dt.datetime) -> list[Finding]:
    """An expired exception is itself a finding: someone must renew (with a reason) or remove it."""
    out = []
    for e in exceptions:
        if e.expired(now) and any(fnmatch.fnmatchcase(env, x) for x in e.envs):
            out.append(Finding(EXCEPTION, "exception-expired", MEDIUM, f"exception/{e.rule}@{e.resource}",
                               f"the exception for {e.rule} on {e.resource} (owner {e.owner}) expired {e.expires}; "
                               "the findings it covered are open again",
                               "fix the findings, or renew the exception in infra/compliance-exceptions.yaml "
                               "with a new expiry and a reason that still holds"))
    return out


def _finding(row: Mapping[str, Any]) -> Finding:
    return Finding(str(row.get("source")), str(row.get("rule")), str(row.get("severity")), str(row.get("resource")),
                   str(row.get("message", "")), str(row.get("remediation", "")), str(row.get("location", "")))


# -- history -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Classified:
    reported: tuple[ReportedFinding, ...]
    #: Rows to write (inserts and replacements), keyed by finding id.
    rows: dict[str, dict[str, Any]]


def classify(stored: Mapping[str, Mapping[str, Any]], findings: Sequence[Finding],
             exceptions: Sequence[ComplianceException], *, env: str, now: dt.datetime,
             scanned_sources: Iterable[str], unread_resources: Sequence[str] = ()) -> Classified:
    """Pure: stored rows by id + the current findings -> the reported findings and the rows to write.
    ``unread_resources``: resource prefixes a source did not deliver this time (``nodepool/`` when ARM did not
    answer): their open rows stay open."""
    stamp = iso(now)
    scanned = set(scanned_sources)
    reported: list[ReportedFinding] = []
    rows: dict[str, dict[str, Any]] = {}
    current: set[str] = set()
    for f in findings:
        current.add(f.id)
        row = stored.get(f.id)
        active = row is not None and row.get("status") in ("open", EXCEPTED)
        first = parse_iso(row["first_seen"]) if active and row.get("first_seen") else now
        exception = next((e for e in exceptions if not e.expired(now) and e.applies(f, env)), None)
        # Open before: persisting. Never seen, fixed before, or excepted until now (the exception lapsed or was
        # removed): new, so that it alerts; first_seen keeps the finding's history.
        status = EXCEPTED if exception is not None else (
            PERSISTING if active and row.get("status") == "open" else NEW)
        reported.append(ReportedFinding(f, status, first, now, exception.label if exception else ""))
        rows[f.id] = {"source": f.source, "rule": f.rule, "severity": f.severity, "resource": f.resource,
                      "message": f.message[:2000], "remediation": f.remediation[:1000],
                      "status": EXCEPTED if exception else "open", "first_seen": iso(first), "last_seen": stamp,
                      "fixed_at": "", "exception": (exception.label if exception else "")[:1000],
                      "location": f.location[:1000]}
    for fid, row in stored.items():
        if fid in current or row.get("status") not in ("open", EXCEPTED) or row.get("source") not in scanned:
            continue
        if any(str(row.get("resource", "")).startswith(prefix) for prefix in unread_resources):
            continue
        finding = _finding(row)
        first = parse_iso(row["first_seen"]) if row.get("first_seen") else now
        last = parse_iso(row["last_seen"]) if row.get("last_seen") else now
        reported.append(ReportedFinding(finding, FIXED, first, last))
        rows[fid] = {**{k: v for k, v in row.items() if not k.startswith("_") and k not in
                        ("PartitionKey", "RowKey", "Timestamp")}, "status": FIXED, "fixed_at": stamp}
    return Classified(tuple(sorted(reported, key=sort_key)), rows)


def report_from_rows(rows: Mapping[str, Mapping[str, Any]], scanned_at: dt.datetime) -> tuple[ReportedFinding, ...]:
    """The findings of the scan at ``scanned_at``, rebuilt from stored rows (``last_scan``)."""
    stamp = iso(scanned_at)
    out = []
    for row in rows.values():
        finding = _finding(row)
        first = parse_iso(row["first_seen"]) if row.get("first_seen") else scanned_at
        last = parse_iso(row["last_seen"]) if row.get("last_seen") else scanned_at
        status = row.get("status")
        if status == FIXED and row.get("fixed_at") == stamp:
            out.append(ReportedFinding(finding, FIXED, first, last))
        elif status in ("open", EXCEPTED) and row.get("last_seen") == stamp:
            label = str(row.get("exception") or "")
            kind = EXCEPTED if status == EXCEPTED else (NEW if row.get("first_seen") == stamp else PERSISTING)
            out.append(ReportedFinding(finding, kind, first, last, label))
    return tuple(sorted(out, key=sort_key))
