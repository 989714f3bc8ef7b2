"""The compliance scan end to end: the registered timer function run by the local host against the Kubernetes
emulator (seeded from this repository's gitops/, plus what each test adds), the ARM emulator's AKS pools and
Azurite; history across scans,
the exceptions file, Kyverno's reports merged, the new-high alert line, and `platformctl scan` on the same."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

import pytest
import requests

from shared.cli import main
from shared.context import Context, set_context
from shared.credentials import StaticTokenCredential
from shared.services.compliance import history, last_scan, run_scan
from shared.settings import Settings

pytestmark = pytest.mark.integration
ENV = "dev-uaenorth"


@pytest.fixture(scope="module")
def sandbox(dev_platform, tmp_path_factory):
    from shared.local.sandbox import Sandbox

    with Sandbox(dev_platform, tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture
def kube(sandbox):
    return sandbox.kubernetes


@pytest.fixture
def environ(sandbox, azurite):
    sandbox.kubernetes.reset()
    sandbox.arm.reset()
    return {"PLATFORM_ENV": ENV, "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "SDK_MAX_RETRIES": "0", "HTTP_TIMEOUT_SECONDS": "5", "COMPLIANCE_SCHEDULE": "0 30 4 * * *",
            **sandbox.settings_env()}


@pytest.fixture
def ctx(environ, dev_platform):
    context = Context(settings=Settings.from_env(environ), platform=dev_platform, credential=StaticTokenCredential(),
                      clock=lambda: dt.datetime.now(dt.UTC))
    from shared.state import table_key

    for row in context.storage.query(history.FINDINGS_TABLE, "PartitionKey eq @pk", {"pk": table_key(ENV)}):
        context.storage.delete(history.FINDINGS_TABLE, row["PartitionKey"], row["RowKey"])
    return context


def _bad_deployment(kube, *, host_pid: bool = True) -> None:
    kube.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}, "namespaces")
    kube.put_object({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "hostPID": host_pid,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "web", "image": "acrplatdevuaen.azurecr.io/web:1",
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                            "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                                          "limits": {"cpu": "1", "memory": "1Gi"}}}]}}}}, "deployments")


def _policy_report(kube) -> None:
    kube.put_object({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
                     "metadata": {"name": "polr-web", "namespace": "apps"},
                     "scope": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "apps"},
                     "results": [{"policy": "require-labels", "rule": "check-team", "result": "fail",
                                  "severity": "medium", "message": "label 'team' is required"}],
                     "summary": {"fail": 1}}, "policyreports")


def _by_rule(report) -> dict[tuple[str, str], str]:
    return {(f.finding.rule, f.finding.resource): f.status for f in report.findings}


def test_the_timer_scans_the_sandbox_and_history_tells_new_persisting_and_fixed_apart(ctx, kube, caplog,
                                                                                     monkeypatch):
    import function_app
    from shared.local.host import LocalHost

    monkeypatch.setenv("COMPLIANCE_SCHEDULE", "0 30 4 * * *")  # the host resolves %COMPLIANCE_SCHEDULE% from it

    _bad_deployment(kube)
    _policy_report(kube)
    set_context(ctx)
    host = LocalHost(function_app.app, port=0, run_timers=False, storage=ctx.storage)
    url = host.start()
    try:
        assert "compliance_scan" in host.functions

        def scan_by_timer(after: dt.datetime | None):
            assert requests.post(f"{url}/admin/functions/compliance_scan", json={}, timeout=5).status_code == 202
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                report = last_scan(ctx, env=ENV)
                if report is not None and (after is None or report.scanned_at > after):
                    return report
                time.sleep(0.1)
            raise AssertionError("the timer's scan did not finish")

        with caplog.at_level(logging.ERROR, logger="platform_core.compliance"):
            first = scan_by_timer(None)
        assert first.unavailable == ()  # the cluster, Kyverno's reports and the AKS pools (ARM) were all read
        found = _by_rule(first)
        assert found[("disallow-host-namespaces", "deployment/apps/web")] == "new"
        assert found[("platform-default-deny", "namespace/apps")] == "new"
        assert found[("require-labels/check-team", "deployment/apps/web")] == "new"  # Kyverno's, merged
        # The seeded Flux controllers run in flux-system, excepted in infra/compliance-exceptions.yaml.
        flux_system = [f for f in first.findings if "/flux-system/" in f.finding.resource]
        assert flux_system and {f.status for f in flux_system} == {"excepted"}
        # The namespaces the repository declares carry their default-deny policies (seeded from gitops/).
        assert ("platform-default-deny", "namespace/model-serving") not in found
        alerts = [r for r in caplog.records if r.getMessage().startswith("COMPLIANCE_NEW_HIGH")]
        assert {r.rule for r in alerts} >= {"disallow-host-namespaces", "platform-default-deny"}

        _bad_deployment(kube, host_pid=False)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="platform_core.compliance"):
            second = scan_by_timer(first.scanned_at)
        found = _by_rule(second)
        assert found[("disallow-host-namespaces", "deployment/apps/web")] == "fixed"
        assert found[("platform-default-deny", "namespace/apps")] == "persisting"
        assert not [r for r in caplog.records if r.getMessage().startswith("COMPLIANCE_NEW_HIGH")]
        assert second.summary()["fixed"] == 1 and second.summary()["new"] == 0
    finally:
        host.stop()
        set_context(None)


def test_a_cluster_that_cannot_be_read_keeps_the_earlier_findings_open(ctx, kube):
    _bad_deployment(kube)
    now = dt.datetime.now(dt.UTC)
    first = run_scan(ctx, env=ENV, now=now, notify=False)
    assert _by_rule(first)[("disallow-host-namespaces", "deployment/apps/web")] == "new"
    kube.inject(status=403, path="/apis/apps/v1/deployments", times=5)
    second = run_scan(ctx, env=ENV, now=now + dt.timedelta(days=1), notify=False)
    assert [s for s, _ in second.unavailable] == ["cluster"]
    assert not [f for f in second.findings if f.status == "fixed" and f.finding.source == "cluster"]
    assert second.exit_code == 0 or second.blocking  # the contract holds whatever was read


def test_secrets_that_may_not_be_read_leave_certificate_expiry_unjudged_not_missing(ctx, kube):
    kube.inject(status=403, path="/api/v1/namespaces/[^/]+/secrets/", times=50)
    report = run_scan(ctx, env=ENV, now=dt.datetime.now(dt.UTC), record=False)
    assert [s for s, _ in report.unavailable] == ["certificates"]
    assert not [f for f in report.findings if f.finding.rule == "platform-origin-certificate-expiry"]
    kube.clear_faults()
    report = run_scan(ctx, env=ENV, now=dt.datetime.now(dt.UTC), record=False)
    # The seeded Gateways reference TLS Secrets the sandbox does not hold until external-secrets syncs them.
    assert {f.finding.resource for f in report.findings if f.finding.rule == "platform-origin-certificate-expiry"}


def test_platformctl_scan_prints_the_scan_json_and_exits_1_on_open_high_findings(environ, ctx, kube, tmp_path,
                                                                                 capsys):
    _bad_deployment(kube)
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": environ}))
    sarif = tmp_path / "scan.sarif"
    code = main(["--settings", str(settings), "--json", "scan", "--no-gitops", "--no-record", "--sarif", str(sarif)])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["env"] == ENV and set(data["summary"]) == {"critical", "high", "medium", "low", "info", "new",
                                                          "fixed"}
    assert any(f["rule"] == "disallow-host-namespaces" and f["status"] == "new" for f in data["findings"])
    assert json.loads(sarif.read_text())["version"] == "2.1.0"
    assert last_scan(ctx, env=ENV) is None  # --no-record stored nothing


def test_history_of_more_than_a_hundred_findings_is_written_in_batches_and_read_back(ctx):
    from shared.services.compliance import scan
    from shared.services.compliance.findings import Finding

    now = dt.datetime(2026, 11, 30, 4, 30, tzinfo=dt.UTC)
    findings = [Finding("cluster", "platform-requests-limits", "low", f"deployment/apps/w{i}", "limits")
                for i in range(230)]  # three transactions: 100, 100, 30 (+ the scan row)
    result = history.classify({}, findings, (), env=ENV, now=now, scanned_sources=("cluster",))
    scan._write_rows(ctx.storage, ENV, result.rows, {"scanned_at": "2026-11-30T04:30:00Z", "sources": "cluster"})
    rows = scan._stored_rows(ctx.storage, ENV)
    assert len(rows) == 230 and {r["status"] for r in rows.values()} == {"open"}
    assert len(last_scan(ctx, env=ENV).findings) == 230
