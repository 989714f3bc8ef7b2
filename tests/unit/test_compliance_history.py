"""Compliance history, exceptions and outputs: new/persisting/fixed/excepted transitions, the exceptions file
(valid, expired, malformed), the Scan JSON contract, SARIF 2.1.0 validated against the official schema, and
checkov's JSON report read as findings.

The SARIF schema is vendored in tests/unit/data/sarif-schema-2.1.0.json, copied unchanged from the OASIS
SARIF TC's repository (https://github.com/oasis-tcs/sarif-spec, sarif-2.1/schema/sarif-schema-2.1.0.json; its
``id`` is https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.services.compliance import history as h
from shared.services.compliance import scan
from shared.services.compliance.findings import Finding, ScanReport, without_history

T0 = dt.datetime(2026, 11, 28, 4, 30, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(days=1)
T2 = T1 + dt.timedelta(days=1)
ENV = "dev-uaenorth"
HOST_PATH = Finding("cluster", "disallow-host-path", "high", "daemonset/gpu-operator/driver", "HostPath volumes: x",
                    "use a PVC")
NO_LIMITS = Finding("cluster", "platform-requests-limits", "low", "deployment/apps/web", "limits", "set them")
CHECKOV = Finding("checkov", "CKV_AZURE_6", "high", "infra/modules/aks/main.tf:azurerm_kubernetes_cluster.this",
                  "authorized IPs", "", "infra/modules/aks/main.tf#L12")
SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


class Store:
    """The table as ``classify`` sees it: rows by id, updated with what it returns."""

    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}

    def scan(self, findings, now, exceptions=(), sources=("cluster", "kyverno", "exception")):
        result = h.classify(self.rows, findings, exceptions, env=ENV, now=now, scanned_sources=sources)
        self.rows.update({k: dict(v) for k, v in result.rows.items()})
        return {(f.finding.rule, f.status) for f in result.reported}


def test_a_finding_is_new_then_persisting_then_fixed_then_gone():
    store = Store()
    assert store.scan([HOST_PATH, NO_LIMITS], T0) == {("disallow-host-path", "new"),
                                                      ("platform-requests-limits", "new")}
    assert store.scan([HOST_PATH], T1) == {("disallow-host-path", "persisting"), ("platform-requests-limits", "fixed")}
    assert store.scan([HOST_PATH], T2) == {("disallow-host-path", "persisting")}
    assert store.rows[HOST_PATH.id]["first_seen"] == "2026-11-28T04:30:00Z"
    assert store.rows[HOST_PATH.id]["last_seen"] == "2026-11-30T04:30:00Z"


def test_a_fixed_finding_that_comes_back_is_new_again():
    store = Store()
    store.scan([NO_LIMITS], T0)
    store.scan([], T1)
    assert store.scan([NO_LIMITS], T2) == {("platform-requests-limits", "new")}
    assert store.rows[NO_LIMITS.id]["first_seen"] == "2026-11-30T04:30:00Z"


def test_a_source_not_scanned_this_time_keeps_its_findings_open():
    store = Store()
    store.scan([CHECKOV], T0, sources=("cluster", "checkov"))
    assert store.scan([], T1, sources=("cluster",)) == set()
    assert store.rows[CHECKOV.id]["status"] == "open"
    assert store.scan([], T2, sources=("cluster", "checkov")) == {("CKV_AZURE_6", "fixed")}


def test_pools_not_read_this_time_keep_their_findings_open():
    pool = Finding("cluster", "platform-gpu-node-taint", "high", "nodepool/h100", "lacks taint")
    store = Store()
    store.scan([pool], T0)
    result = h.classify(store.rows, [], (), env=ENV, now=T1, scanned_sources=("cluster",),
                        unread_resources=("nodepool/",))
    assert result.reported == () and store.rows[pool.id]["status"] == "open"


EXCEPTION = {"rule": "disallow-host-path", "resource": "daemonset/gpu-operator/*", "env": [ENV],
             "owner": "platform-core", "reason": "the driver needs /run/nvidia", "expires": "2026-11-29",
             "validated": "2026-11-01"}


def test_an_exception_excepts_until_its_expiry_then_the_finding_opens_and_the_lapse_is_a_finding():
    exceptions = h.parse_exceptions({"exceptions": [EXCEPTION]})
    store = Store()
    assert store.scan([HOST_PATH], T0, exceptions) == {("disallow-host-path", "excepted")}
    assert store.scan([HOST_PATH], T1, exceptions) == {("disallow-host-path", "excepted")}  # the last day
    lapsed = h.expired_exception_findings(exceptions, ENV, T2)
    assert [(f.source, f.rule, f.severity) for f in lapsed] == [("exception", "exception-expired", "medium")]
    assert store.scan([HOST_PATH, *lapsed], T2, exceptions) == {("disallow-host-path", "new"),
                                                                ("exception-expired", "new")}
    assert store.rows[HOST_PATH.id]["first_seen"] == "2026-11-28T04:30:00Z"  # history kept across the exception


def test_an_exception_for_another_environment_or_resource_does_not_apply():
    other_env = h.parse_exceptions({"exceptions": [{**EXCEPTION, "env": "prd-*", "expires": "2027-01-01"}]})
    other_res = h.parse_exceptions({"exceptions": [{**EXCEPTION, "resource": "daemonset/x/*",
                                                    "expires": "2027-01-01"}]})
    assert Store().scan([HOST_PATH], T0, other_env) == {("disallow-host-path", "new")}
    assert Store().scan([HOST_PATH], T0, other_res) == {("disallow-host-path", "new")}
    assert h.expired_exception_findings(other_env, ENV, T2 + dt.timedelta(days=400)) == []


@pytest.mark.parametrize(("raw", "problem"), [
    ({"exceptions": [{**EXCEPTION, "owner": ""}]}, "exceptions[0]: missing owner"),
    ({"exceptions": [{k: v for k, v in EXCEPTION.items() if k != "reason"}]}, "exceptions[0]: missing reason"),
    ({"exceptions": [{**EXCEPTION, "expires": "next year"}]}, "exceptions[0].expires: expected a date"),
    ({"exceptions": [{**EXCEPTION, "env": 3}]}, "exceptions[0].env"),
    ({"exceptions": ["disallow-host-path"]}, "exceptions[0]: expected a mapping"),
    ({"exceptions": {"rule": "x"}}, "expected a mapping with a list 'exceptions'"),
])
def test_a_malformed_exceptions_file_is_a_clear_configuration_error(raw, problem):
    with pytest.raises(ConfigError) as caught:
        h.parse_exceptions(raw, "compliance-exceptions.yaml")
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_a_file_that_is_not_yaml_names_itself(tmp_path):
    path = tmp_path / "compliance-exceptions.yaml"
    path.write_text("exceptions: [\n")
    with pytest.raises(ConfigError, match=r"compliance-exceptions\.yaml: not valid YAML"):
        h.load_exceptions(path)


def test_the_repository_exceptions_file_is_valid_and_every_entry_has_an_owner_reason_and_expiry():
    exceptions = h.load_exceptions(scan.exceptions_path())
    assert exceptions
    for e in exceptions:
        assert e.owner and len(e.reason) > 20 and e.expires


def test_the_stored_rows_rebuild_the_last_scan():
    store = Store()
    store.scan([HOST_PATH, NO_LIMITS], T0)
    store.scan([HOST_PATH], T1)
    rebuilt = {(f.finding.rule, f.status) for f in h.report_from_rows(store.rows, T1)}
    assert rebuilt == {("disallow-host-path", "persisting"), ("platform-requests-limits", "fixed")}


# -- outputs ----------------------------------------------------------------------------------------------------


def _report() -> ScanReport:
    store = Store()
    exceptions = h.parse_exceptions({"exceptions": [{**EXCEPTION, "resource": "deployment/apps/*",
                                                     "rule": "platform-*", "expires": "2027-01-01"}]})
    store.scan([CHECKOV, NO_LIMITS], T0, exceptions, sources=("cluster", "checkov"))
    result = h.classify(store.rows, [HOST_PATH, NO_LIMITS], exceptions, env=ENV, now=T1,
                        scanned_sources=("cluster", "checkov"))
    return ScanReport(ENV, T1, result.reported, ("cluster", "checkov"), (("kyverno", "Forbidden: no access"),))


def test_the_scan_json_follows_the_contract():
    data = _report().as_dict()
    assert set(data) >= {"env", "scanned_at", "findings", "summary"}
    assert data["scanned_at"] == "2026-11-29T04:30:00Z"
    keys = {"id", "source", "rule", "severity", "resource", "message", "remediation", "first_seen", "last_seen",
            "status"}
    for f in data["findings"]:
        assert keys <= set(f)
        assert f["source"] in ("cluster", "kyverno", "checkov", "gitops", "exception")
        assert f["severity"] in ("critical", "high", "medium", "low", "info")
        assert f["status"] in ("new", "persisting", "fixed", "excepted")
    assert {(f["rule"], f["status"]) for f in data["findings"]} == {
        ("disallow-host-path", "new"), ("platform-requests-limits", "excepted"), ("CKV_AZURE_6", "fixed")}
    assert data["summary"] == {"critical": 0, "high": 1, "medium": 0, "low": 0, "info": 0, "new": 1, "fixed": 1}


def test_the_exit_code_is_1_only_for_open_high_or_critical_findings():
    assert _report().exit_code == 1
    low_only = ScanReport(ENV, T0, without_history([NO_LIMITS], T0))
    assert low_only.exit_code == 0
    assert ScanReport(ENV, T0, ()).exit_code == 0


def test_the_ids_are_stable_and_differ_by_source_rule_and_resource():
    same = Finding("cluster", "disallow-host-path", "medium", "daemonset/gpu-operator/driver", "other text")
    assert same.id == HOST_PATH.id
    assert len({HOST_PATH.id, NO_LIMITS.id, CHECKOV.id,
                Finding("gitops", HOST_PATH.rule, "high", HOST_PATH.resource, "").id}) == 4


def test_the_chat_summary_is_short_and_says_whether_the_gate_passes():
    text = _report().chat_summary()
    assert text.startswith("Compliance dev-uaenorth at 2026-11-29 04:30Z: 0 critical, 1 high")
    assert "gate FAILS" in text and "disallow-host-path" in text and "kyverno" in text
    assert len(text.splitlines()) <= 8


def test_the_sarif_output_validates_against_the_official_2_1_0_schema():
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    document = scan.sarif(_report())
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(document)
    results = document["runs"][0]["results"]
    by_rule = {r["ruleId"]: r for r in results}
    assert by_rule["disallow-host-path"]["level"] == "error"
    assert by_rule["disallow-host-path"]["baselineState"] == "new"
    assert by_rule["CKV_AZURE_6"]["baselineState"] == "absent"
    assert by_rule["CKV_AZURE_6"]["locations"][0]["physicalLocation"]["region"] == {"startLine": 12}
    assert by_rule["platform-requests-limits"]["suppressions"][0]["kind"] == "external"
    rules = document["runs"][0]["tool"]["driver"]["rules"]
    assert [rules[r["ruleIndex"]]["id"] for r in results] == [r["ruleId"] for r in results]
    assert any(r.get("helpUri", "").startswith("https://kubernetes.io/") for r in rules)


def test_checkov_failed_checks_become_findings_and_skips_do_not():
    report = [{"check_type": "terraform", "results": {
        "failed_checks": [{"check_id": "CKV_AZURE_6", "check_name": "Ensure AKS has an API Server Authorized IP "
                           "Ranges enabled", "resource": "azurerm_kubernetes_cluster.this",
                           "file_path": "/modules/aks/main.tf", "file_line_range": [12, 80], "severity": None,
                           "guideline": "https://docs.prismacloud.io/"},
                          {"check_id": "CKV_AZURE_999", "check_name": "x", "resource": "r.a", "file_path": "/a.tf",
                           "file_line_range": [1, 2], "severity": "LOW"}],
        "skipped_checks": [{"check_id": "CKV_AZURE_4", "resource": "r", "file_path": "/b.tf",
                            "check_result": {"result": "SKIPPED", "suppress_comment": "why"}}]},
        "summary": {"failed": 2}}, {"check_type": "secrets", "results": {"failed_checks": []}}]
    found = scan.checkov_findings(report)
    assert [(f.source, f.rule, f.severity, f.location) for f in found] == [
        ("checkov", "CKV_AZURE_6", "high", "infra/modules/aks/main.tf#L12"),
        ("checkov", "CKV_AZURE_999", "low", "infra/a.tf#L1")]


def test_checkov_runs_offline_with_inline_skips_honoured():
    command = scan.checkov_command("checkov", Path("/repo/infra"))
    assert "--skip-download" in command and "--directory" in command
    assert "--skip-check" not in command and "--skip-suppressions" not in command  # inline skips count
