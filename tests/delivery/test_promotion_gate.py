"""The promotion gate's decision (pure) and `platformctl gate` on fixture evidence (Scan JSON contract, drift JSON)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from shared import cli
from shared.services import delivery_gate as gate

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
ENV = "stg-uaenorth"


def drift_doc(*findings, env=ENV, at=NOW - dt.timedelta(minutes=10), unavailable=()):
    return {"env": env, "checked_at": at.isoformat().replace("+00:00", "Z"), "scope": ["cloud", "gitops"],
            "dry_run": True, "findings": list(findings), "unavailable": list(unavailable),
            "merge_request": None, "reconciles": []}


def drift_finding(severity, resource="nodepool/h100", field="vm_size"):
    return {"kind": "cloud_setting_changed", "severity": severity, "resource": resource, "field": field,
            "expected": "a", "actual": "b", "destructive": False, "remedy": "revert", "message": "changed by hand",
            "edit": None, "first_seen": None}


def scan_doc(*findings, env=ENV, at=NOW - dt.timedelta(minutes=5)):
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in ("critical", "high", "medium", "low", "info")}
    return {"env": env, "scanned_at": at.isoformat(), "findings": list(findings),
            "summary": {**counts, "new": sum(1 for f in findings if f["status"] == "new"), "fixed": 0}}


def scan_finding(severity, status, rule="CKV_AZURE_1", resource="aks/aks-platform-stg-uaenorth"):
    return {"id": f"{rule}-{severity}-{status}", "source": "checkov", "rule": rule, "severity": severity,
            "resource": resource, "message": "a finding", "remediation": "fix it", "first_seen": NOW.isoformat(),
            "last_seen": NOW.isoformat(), "status": status}


CASES = {
    "a clean target with a clean scan is promoted": (
        drift_doc(), scan_doc(), True, gate.ALLOWED),
    "warning and info drift do not block": (
        drift_doc(drift_finding("warning"), drift_finding("info")), scan_doc(), True, gate.ALLOWED),
    "critical drift in the target refuses the promotion": (
        drift_doc(drift_finding("critical")), scan_doc(), False, gate.REFUSED_DRIFT),
    "a new high compliance finding refuses the promotion": (
        drift_doc(), scan_doc(scan_finding("high", "new")), False, gate.REFUSED_COMPLIANCE),
    "a persisting critical compliance finding refuses the promotion": (
        drift_doc(), scan_doc(scan_finding("critical", "persisting")), False, gate.REFUSED_COMPLIANCE),
    "excepted and fixed high findings are closed": (
        drift_doc(), scan_doc(scan_finding("high", "excepted"), scan_finding("critical", "fixed")),
        True, gate.ALLOWED),
    "medium, low and info findings do not block": (
        drift_doc(), scan_doc(scan_finding("medium", "new"), scan_finding("low", "persisting"),
                              scan_finding("info", "new")), True, gate.ALLOWED),
    "no scan evidence is a documented no-op that says so": (
        drift_doc(), None, True, gate.ALLOWED_SCAN_UNAVAILABLE),
    "no drift evidence refuses: the gate cannot see": (
        None, scan_doc(), False, gate.REFUSED_EVIDENCE),
    "evidence about another environment refuses": (
        drift_doc(env="dev-uaenorth"), scan_doc(), False, gate.REFUSED_EVIDENCE),
    "a scan older than a day refuses": (
        drift_doc(), scan_doc(at=NOW - dt.timedelta(hours=25)), False, gate.REFUSED_EVIDENCE),
    "a drift source that could not be read refuses": (
        drift_doc(unavailable=[{"source": "kubernetes", "error": "timeout"}]), scan_doc(), False,
        gate.REFUSED_EVIDENCE),
}


@pytest.mark.parametrize(("drift", "scan", "allowed", "reason"), CASES.values(), ids=CASES.keys())
def test_the_gate_decides_from_the_target_environments_evidence(drift, scan, allowed, reason):
    decision = gate.decide(env=ENV, drift=drift, scan=scan, now=NOW)
    assert (decision.allowed, decision.reason) == (allowed, reason), decision.message
    assert ENV in decision.message


def test_a_refusal_names_each_blocking_finding():
    decision = gate.decide(env=ENV, drift=drift_doc(drift_finding("critical", "nodepool/mi300x")),
                           scan=scan_doc(scan_finding("high", "new", rule="disallow-privileged")), now=NOW)
    assert [(b.source, b.rule) for b in decision.blockers] == [("drift", "cloud_setting_changed"),
                                                                ("scan", "disallow-privileged")]
    assert "nodepool/mi300x" in decision.message


def test_the_no_op_says_compliance_was_not_checked():
    decision = gate.decide(env=ENV, drift=drift_doc(), scan=None, now=NOW,
                           scan_unavailable_reason="platformctl has no scan command yet")
    assert "compliance not checked: platformctl has no scan command yet" in decision.message
    assert decision.as_dict()["notes"]


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_platformctl_gate_exits_1_and_prints_the_blockers(tmp_path, capsys, monkeypatch):
    from shared import cli_gate
    monkeypatch.setattr(cli_gate, "_now", lambda: NOW)
    (tmp_path / "drift.json").write_text(json.dumps(drift_doc()))
    (tmp_path / "scan.json").write_text(json.dumps(scan_doc(scan_finding("critical", "new"))))
    code, out, _ = run_cli(capsys, "gate", "--env", ENV, "--drift", str(tmp_path / "drift.json"),
                           "--scan", str(tmp_path / "scan.json"), "--json")
    assert code == 1
    data = json.loads(out)
    assert (data["allowed"], data["reason"]) == (False, gate.REFUSED_COMPLIANCE)


def test_platformctl_gate_allows_without_scan_and_needs_no_settings(tmp_path, capsys, monkeypatch):
    from shared import cli_gate
    monkeypatch.setattr(cli_gate, "_now", lambda: NOW)
    for name in ("PLATFORM_ENV", "PLATFORM_STORAGE_ACCOUNT", "PLATFORM_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "drift.json").write_text(json.dumps(drift_doc()))
    code, out, _ = run_cli(capsys, "gate", "--env", ENV, "--drift", str(tmp_path / "drift.json"))
    assert code == 0
    assert "ALLOWED [PROMOTION_ALLOWED_SCAN_UNAVAILABLE]" in out
    assert "compliance not checked" in out


def test_platformctl_gate_refuses_unreadable_evidence_with_exit_2(tmp_path, capsys):
    (tmp_path / "drift.json").write_text("not json")
    code, _, err = run_cli(capsys, "gate", "--env", ENV, "--drift", str(tmp_path / "drift.json"))
    assert code == 2
    assert "is not JSON" in err
