"""What `make run` shows for drift: the sandbox told to drift through its /_sandbox/ routes, a finding and a merge
request through `platformctl drift`, and a push in the GitLab emulator delivered to the app's webhook, which
requests the Flux reconcile. The whole app, served by the local host, against Azurite."""

from __future__ import annotations

import json
import time

import pytest
import requests

from shared.cli import main
from shared.context import get_context, set_context

pytestmark = pytest.mark.integration
KUSTOMIZATIONS = ("kustomize.toolkit.fluxcd.io/v1", "kustomizations")


@pytest.fixture(scope="module")
def running(azurite, tmp_path_factory):
    import function_app
    from shared.local.host import LocalHost
    from shared.local.sandbox import Sandbox
    from shared.platform import load_environment

    sandbox = Sandbox(load_environment("dev-uaenorth"), tmp_path_factory.mktemp("sandbox"))
    values = {"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
              "SDK_MAX_RETRIES": "0", "HTTP_TIMEOUT_SECONDS": "5", **sandbox.start()}
    path = tmp_path_factory.mktemp("settings") / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    from shared.context import Context

    set_context(Context.from_env(values))
    host = LocalHost(function_app.app, port=0, run_timers=False, storage=get_context().storage)
    url = host.start()
    sandbox.gitlab.webhook_url = f"{url}/api/gitlab/webhook"
    yield sandbox, path, url
    host.stop()
    sandbox.stop()
    set_context(None)


def wait_for(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_the_sandbox_drifts_on_request_and_platformctl_opens_the_merge_request(running, capsys):
    sandbox, settings, _ = running
    answer = requests.post(f"{sandbox.arm.base_url}/_sandbox/drift", json={"pool": "h100", "maxCount": 8},
                           verify=str(sandbox.ca.ca_path), timeout=5)
    assert answer.status_code == 200
    assert requests.post(f"{sandbox.kubernetes.base_url}/_sandbox/drift", json={"name": "apps", "suspend": True},
                         timeout=5).status_code == 200

    assert main(["--settings", str(settings), "--json", "drift", "--open-mr", "--apply"]) == 1
    report = json.loads(capsys.readouterr().out)
    kinds = {(f["kind"], f["resource"]) for f in report["findings"]}
    assert {("CloudSettingChanged", "nodepool/h100"), ("FluxSuspended", "kustomization/flux-system/apps")} <= kinds
    assert report["merge_request"]["reason"] == "NewBranch"
    mrs = [m for m in sandbox.gitlab.merge_requests.values() if m["source_branch"] == "platform-bot/drift/dev-uaenorth"]
    assert len(mrs) == 1

    # A dry run (the default) shows the plan again and changes nothing.
    assert main(["--settings", str(settings), "drift", "--open-mr"]) == 1
    assert "UpToDate" in capsys.readouterr().out


def test_a_push_in_the_gitlab_emulator_reaches_the_webhook_and_flux_reconciles(running):
    sandbox, _, _ = running
    answer = requests.post(f"{sandbox.gitlab.base_url}/_sandbox/push",
                           json={"files": {"gitops/clusters/dev-uaenorth/apps.yaml": "# touched by a human\n"}},
                           timeout=5)
    head = answer.json()["id"]
    wait_for(lambda: ("Push Hook", 202) in sandbox.gitlab.deliveries)

    def applied():
        apps = sandbox.kubernetes.object(*KUSTOMIZATIONS, "apps", "flux-system")
        infra = sandbox.kubernetes.object(*KUSTOMIZATIONS, "infra-configs", "flux-system")
        return (infra["metadata"].get("annotations") or {}).get("reconcile.fluxcd.io/requestedAt") and \
            infra["status"]["lastAppliedRevision"].endswith(head) and apps

    wait_for(applied)


def test_the_hourly_timer_records_findings_and_audits_the_check(running):
    _, _, url = running
    assert requests.post(f"{url}/admin/functions/drift_check", json={}, timeout=5).status_code == 202
    runs = wait_for(lambda: [r for r in get_context().state.audit_trail("drift/dev-uaenorth")
                             if r.actor == "drift_check"], timeout=60)
    assert runs[-1].action == "drift_check" and runs[-1].inputs["findings"] >= 1
